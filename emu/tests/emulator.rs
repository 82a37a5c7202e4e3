//! The emulator's own test kernels (csrc/test_kernels.cu): bugs it must report, and the semantics of
//! shuffles, votes and shared memory.
use circot_emu::{EmuError, Mode, launch_with};

#[repr(C)]
struct TestParams {
    out: *mut u32,
    n: u32,
    reserved: u32,
}

fn run(
    kernel: &str,
    grid: u32,
    block: u32,
    dynamic_shared: usize,
    out: &mut [u32],
    n: u32,
) -> Result<(), EmuError> {
    let params = TestParams {
        out: out.as_mut_ptr(),
        n,
        reserved: 0,
    };
    // SAFETY: params is a live TestParams (the test kernels' parameter); out has an entry for every
    // index the kernel writes with this grid (asserted by the callers' sizes), and nothing else
    // touches it during the call.
    // The plain mode: the diagnostics name the first offending lane in thread order.
    unsafe {
        launch_with(
            Mode::default(),
            kernel,
            [grid, 1, 1],
            [block, 1, 1],
            dynamic_shared,
            (&raw const params).cast(),
            size_of::<TestParams>(),
        )
    }
}

fn expect_error(kernel: &str, block: u32, n: u32, parts: &[&str]) {
    let mut out = vec![0u32; block as usize];
    let err = run(kernel, 1, block, 0, &mut out, n)
        .expect_err(kernel)
        .to_string();
    for part in parts {
        assert!(
            err.contains(part),
            "{kernel}: {err:?} does not mention {part:?}"
        );
    }
}

#[test]
fn reports_a_mask_lane_that_has_exited() {
    expect_error(
        "emu_test_exited_lane",
        32,
        31,
        &[
            "kernel emu_test_exited_lane",
            "block (0,0,0)",
            "warp 0, lane 0",
            "__shfl_sync with mask 0xffffffff",
            "lane 31 has exited",
        ],
    );
}

#[test]
fn reports_a_mask_lane_past_the_end_of_the_block() {
    expect_error("emu_test_exited_lane", 20, 32, &["lane 20 does not exist"]);
}

#[test]
fn reports_lanes_waiting_with_different_masks() {
    expect_error(
        "emu_test_divergent_mask",
        32,
        32,
        &[
            "warp 0, lane 0",
            "__shfl_xor_sync with mask 0x7fffffff",
            "lane 1 of the same warp",
            "mask 0xffffffff",
        ],
    );
}

#[test]
fn reports_syncthreads_against_a_shuffle() {
    expect_error(
        "emu_test_syncthreads_vs_shfl",
        64,
        64,
        &[
            "warp 0, lane 0: __syncthreads",
            "lane 16 waits in __shfl_sync with mask 0xffffffff",
        ],
    );
}

#[test]
fn reports_a_shuffle_reading_outside_its_mask() {
    expect_error(
        "emu_test_reads_outside_mask",
        32,
        32,
        &[
            "warp 0, lane 0: __shfl_sync with mask 0x0000ffff reads lane 20, which is not in the mask",
        ],
    );
}

#[test]
fn reports_a_caller_outside_its_mask() {
    expect_error(
        "emu_test_caller_outside_mask",
        32,
        32,
        &[
            "warp 0, lane 1: __ballot_sync with mask 0x00000001: the calling lane is not in the mask",
        ],
    );
}

#[test]
fn rejects_bad_launches() {
    let mut out = vec![0u32; 64];
    let cases: [(&str, u32, usize, &str); 4] = [
        ("no_such_kernel", 32, 0, "unknown kernel no_such_kernel"),
        ("emu_test_collectives", 0, 0, "empty grid or block"),
        ("emu_test_collectives", 2048, 0, "exceeds its limit of 1024"),
        ("emu_test_shared_reverse", 32, 64 * 1024, "48 KiB"),
    ];
    for (kernel, block, dynamic_shared, message) in cases {
        let err = run(kernel, 1, block, dynamic_shared, &mut out, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains(message), "{err:?}");
    }
    // SAFETY: the size check fails before anything is read through the (null) params pointer.
    let err = unsafe {
        circot_emu::launch(
            "circot_sinkhorn_f32_k8",
            [1; 3],
            [32, 1, 1],
            0,
            std::ptr::null(),
            8,
        )
    }
    .unwrap_err();
    assert!(
        err.message()
            .contains("takes 192 bytes of parameters, got 8"),
        "{err}"
    );
}

#[test]
fn shuffles_and_votes_follow_ptx() {
    let mut out = vec![0u32; 64 * 8];
    run("emu_test_collectives", 1, 64, 0, &mut out, 64).unwrap();
    let ballot = (0..32).filter(|l| l % 3 == 0).fold(0u32, |b, l| b | 1 << l);
    for t in 0..64u32 {
        let lane = t % 32;
        let v = |l: u32| 100 + l;
        let expected = [
            v(lane / 8 * 8 + 3),
            if lane % 16 < 3 { v(lane) } else { v(lane - 3) },
            if lane + 5 > 31 { v(lane) } else { v(lane + 5) },
            v(lane ^ 6),
            ballot,
            1,
            0,
            if lane < 16 {
                v(lane ^ 1)
            } else if lane == 31 {
                v(lane)
            } else {
                v(lane + 1)
            },
        ];
        let got = &out[t as usize * 8..][..8];
        assert_eq!(got, expected, "thread {t}");
    }
}

#[test]
fn shared_memory_is_per_block_with_a_partial_last_block() {
    for (block, n) in [(32u32, 31u32), (64, 97), (128, 1025)] {
        let grid = n.div_ceil(block);
        let mut out = vec![u32::MAX; n as usize];
        run(
            "emu_test_shared_reverse",
            grid,
            block,
            block as usize * 4,
            &mut out,
            n,
        )
        .unwrap();
        for (i, &o) in out.iter().enumerate() {
            let i = i as u32;
            assert_eq!(
                o,
                i / block * block + (block - 1 - i % block),
                "block {block}, thread {i}"
            );
        }
    }
}
