//! The CRI v1 gRPC types and service stubs generated from `proto/runtime.proto`.
#![allow(clippy::all, missing_docs)]
tonic::include_proto!("runtime.v1");
