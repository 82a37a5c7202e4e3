//! The repository keeps a copy of the shared reference vectors so that a clone anywhere can run
//! the tests. Where the original is beside the checkout, the copy must be identical to it.

#[test]
fn the_copy_of_the_reference_vectors_matches_the_original() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = std::fs::read(root.join("tests/data/cases.json")).expect("tests/data/cases.json");
    assert!(copy.len() > 100_000, "the copy looks truncated");
    match std::fs::read(root.join("../shared/refs/cases.json")) {
        Ok(original) => assert!(
            copy == original,
            "tests/data/cases.json differs from ../shared/refs/cases.json: copy it again"
        ),
        Err(e) => eprintln!("original not beside this checkout ({e}); using the copy as it is"),
    }
}
