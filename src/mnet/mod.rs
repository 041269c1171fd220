//! MNET: envelopes, the server pipeline, the client, faults and the peer registry.

pub mod client;
pub mod contacts;
pub mod envelope;
pub mod faults;
pub mod known_peers;
pub mod node;
pub mod registration;
pub mod server;
pub mod services;
