//! Compiles the echo service's proto (`proto/echo.proto`) with the vendored `protoc`, as
//! `schemas/build.rs` does for the Corridor protos: a bare machine needs nothing but cargo.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // Hand protoc to prost-build through its config: `env::set_var` is unsafe in edition 2024.
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    let proto = "proto/echo.proto";
    tonic_prost_build::configure()
        // The payload as `Bytes`: the client sends one shared buffer, never a copy per request.
        .bytes(".corridor.loadtest.v1")
        .compile_with_config(config, &[proto], &["proto"])?;
    println!("cargo:rerun-if-changed={proto}");
    Ok(())
}
