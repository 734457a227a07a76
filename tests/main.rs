//! Integration tests, compiled as one binary so that they link once.

mod codec_fixtures;
mod conformance;
mod engine_lock;
