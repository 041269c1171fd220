//! The instances table: a heartbeat row per running `serve`, so operators see every instance
//! sharing this state, with its version and key.
