//! Wall-clock milliseconds for progress and speed reports, natively and in the browser.

#[cfg(not(target_arch = "wasm32"))]
pub fn now_ms() -> f64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1e3
}

#[cfg(all(target_arch = "wasm32", feature = "web"))]
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Without the web feature a wasm build has no clock; timings read zero.
#[cfg(all(target_arch = "wasm32", not(feature = "web")))]
pub fn now_ms() -> f64 {
    0.0
}
