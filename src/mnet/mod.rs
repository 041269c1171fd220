//! MNET: envelopes, the server pipeline, the client, faults and the peer registry.

pub mod envelope;
