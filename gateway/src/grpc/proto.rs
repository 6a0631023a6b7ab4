//! The REAPI messages, service traits and clients, generated at build time
//! from `gateway/proto/` (see `build.rs`). The module tree mirrors the
//! protobuf packages, since generated code names other packages by
//! relative paths.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `build.bazel.*`
pub mod build {
    /// `build.bazel.*`
    pub mod bazel {
        /// `build.bazel.remote.*`
        pub mod remote {
            /// `build.bazel.remote.execution.*`
            pub mod execution {
                /// `build.bazel.remote.execution.v2`: CAS, action cache,
                /// capabilities, execution.
                pub mod v2 {
                    tonic::include_proto!("build.bazel.remote.execution.v2");
                }
            }
            /// `build.bazel.remote.asset.*`
            pub mod asset {
                /// `build.bazel.remote.asset.v1`: the Remote Asset API.
                pub mod v1 {
                    tonic::include_proto!("build.bazel.remote.asset.v1");
                }
            }
        }
        /// `build.bazel.semver`: API versions.
        pub mod semver {
            tonic::include_proto!("build.bazel.semver");
        }
    }
}

/// `google.*`
pub mod google {
    /// `google.api`: HTTP annotations the protos carry.
    pub mod api {
        tonic::include_proto!("google.api");
    }
    /// `google.bytestream`: streamed blob reads and writes.
    pub mod bytestream {
        tonic::include_proto!("google.bytestream");
    }
    /// `google.longrunning`: the operations `Execute` would return.
    pub mod longrunning {
        tonic::include_proto!("google.longrunning");
    }
    /// `google.rpc`: status and codes.
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

pub use build::bazel::remote::asset::v1 as asset;
pub use build::bazel::remote::execution::v2 as reapi;
pub use google::bytestream;
