//! The generated protobuf types and gRPC stubs of the `corridor.v1` package.
//!
//! Only the edges of the system (the router's API, the remote-ledger client and server, the load
//! generator) use these directly; everything else works on the domain types of this crate.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("corridor.v1");
}

/// The encoded `FileDescriptorSet` of every Corridor proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("corridor_descriptor");
