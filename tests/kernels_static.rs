//! The compiled kernels against the Rust launcher: every PTX entry point the launcher can name
//! exists, and takes exactly one parameter of `SinkhornParams`' size. A wrong type silently
//! corrupts a launch and nothing else without a GPU would catch it.

#[cfg(circot_kernels)]
#[test]
fn ptx_entries_match_the_rust_launch_arguments() {
    use circot::cuda::{SinkhornParams, launch::all_kernel_names};

    let ptx = std::fs::read_to_string(env!("CIRCOT_PTX")).expect("PTX written by build.rs");
    // `.visible .entry NAME(\n\t.param .align 8 .b8 NAME_param_0[192]\n)`
    let mut entries = Vec::new();
    for block in ptx.split(".entry ").skip(1) {
        let name = block.split('(').next().unwrap().trim().to_string();
        let params_text = &block[..block.find(')').expect("parameter list")];
        let params: Vec<&str> = params_text
            .lines()
            .filter(|l| l.contains(".param"))
            .collect();
        assert_eq!(
            params.len(),
            1,
            "{name}: expected one parameter, got {params:?}"
        );
        let size: usize = params[0]
            .rsplit('[')
            .next()
            .and_then(|s| s.trim_end_matches([']', ',', ' ']).parse().ok())
            .unwrap_or_else(|| panic!("{name}: no byte array parameter in {}", params[0]));
        assert_eq!(
            size,
            std::mem::size_of::<SinkhornParams>(),
            "{name}: parameter size"
        );
        assert!(
            params[0].contains(".align 8"),
            "{name}: parameter alignment"
        );
        entries.push(name);
    }
    entries.sort();
    assert_eq!(entries, all_kernel_names());
}

#[cfg(not(circot_kernels))]
#[test]
fn ptx_entries_match_the_rust_launch_arguments() {
    eprintln!(
        "SKIPPED: the kernels were not built (no nvcc when circot was compiled); \
         .ci/run installs nvcc and runs this check"
    );
}
