#[doc(hidden)]
mod span_exporters;
pub use span_exporters::*;
