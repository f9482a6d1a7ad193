//! Build script: records the compilation target so the runtime can report it as `target_triple`.
//!
//! `TARGET` is only visible to build scripts, not to the crate being compiled, so it is passed
//! on through a `rustc-env` variable that `env!` can read.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Cargo always sets TARGET for build scripts; a placeholder keeps an unusual build driver
    // from failing outright over a value that is only reported, never acted on.
    let target = std::env::var("TARGET").unwrap_or_else(|_| String::from("unknown"));
    println!("cargo:rustc-env=ACTIX_TELEMETRY_TARGET={target}");
}
