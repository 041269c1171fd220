//! The MNET services we publish, each in its own module; the registry of them is assembled
//! where the app is built (`app.rs`), so the MNET layer never names a service.

pub mod use_stats;
