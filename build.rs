//! Build script of the NAPI crate: lets napi-build emit the linker arguments a Node.js addon needs.

fn main() {
    napi_build::setup();
}
