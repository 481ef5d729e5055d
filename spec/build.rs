//! Generates the protocol's Rust from `flynn.openrpc.json` into `OUT_DIR` on every build.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    println!("cargo::rerun-if-changed=flynn.openrpc.json");
    let spec_path = PathBuf::from("flynn.openrpc.json");
    let generated = std::fs::read_to_string(&spec_path)
        .map_err(|e| format!("cannot read {}: {e}", spec_path.display()))
        .and_then(|text| flynn_codegen_lib::Spec::from_json(&text).map_err(|e| e.to_string()))
        .and_then(|spec| flynn_codegen_lib::rust::generate(&spec).map_err(|e| e.to_string()));
    let out_dir = match std::env::var("OUT_DIR") {
        Ok(dir) => PathBuf::from(dir),
        Err(e) => {
            eprintln!("OUT_DIR is not set ({e}); run this through cargo");
            return ExitCode::FAILURE;
        }
    };
    match generated.and_then(|code| {
        std::fs::write(out_dir.join("flynn_protocol.rs"), code)
            .map_err(|e| format!("cannot write generated code: {e}"))
    }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("flynn-protocol: generation from spec/flynn.openrpc.json failed: {message}");
            ExitCode::FAILURE
        }
    }
}
