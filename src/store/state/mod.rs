//! Our own tables: peers and their certificates, per-peer services, our key history,
//! grants, web-service tokens, the audit log, replay keys, the compiled store, and for several
//! instances our shared key pairs and the instances' heartbeats. This file holds the diesel
//! schema and the constants the tables share; the queries live one file per table, and are
//! re-exported here so callers keep writing `store::state::X`.

mod access;
mod audit;
mod compiled;
mod compiled_dedication;
mod compiled_dedication_blocks;
mod console;
mod grants;
mod instances;
mod keys;
mod peers;
mod replay;
mod services;
mod shared_keys;
mod tokens;

pub use access::*;
pub use audit::*;
pub use compiled::*;
pub use compiled_dedication::*;
pub use compiled_dedication_blocks::*;
pub use console::*;
pub use grants::*;
pub use instances::*;
pub use keys::*;
pub use peers::*;
pub use replay::*;
pub use services::*;
pub use shared_keys::*;
pub use tokens::*;

pub mod schema {
    diesel::table! {
        peers (id) {
            id -> BigInt,
            wwwroot -> Text,
            name -> Text,
            application -> Text,
            public_key -> Text,
            public_key_expires -> BigInt,
            ssl_verification -> Integer,
            deleted -> Bool,
            last_connect_time -> BigInt,
            last_error -> Nullable<Text>,
            last_error_time -> Nullable<BigInt>,
            clock_offset -> Nullable<BigInt>,
            connect_timeout_ms -> Nullable<BigInt>,
            request_timeout_ms -> Nullable<BigInt>,
            created_at -> BigInt,
            auto_registered -> Bool,
        }
    }
    diesel::table! {
        peer_certificates (id) {
            id -> BigInt,
            peer_id -> BigInt,
            public_key -> Text,
            fingerprint -> Text,
            expires -> BigInt,
            retired_at -> BigInt,
        }
    }
    diesel::table! {
        peer_services (peer_id, service) {
            peer_id -> BigInt,
            service -> Text,
            publish -> Bool,
            subscribe -> Bool,
        }
    }
    diesel::table! {
        own_keys (fingerprint) {
            fingerprint -> Text,
            created_at -> BigInt,
            expires -> BigInt,
            archived_at -> Nullable<BigInt>,
        }
    }
    diesel::table! {
        grants (id) {
            id -> BigInt,
            home_wwwroot -> Text,
            username -> Text,
            site -> Bool,
            course -> Bool,
            created_at -> BigInt,
            via -> Text,
        }
    }
    diesel::table! {
        ws_tokens (id) {
            id -> BigInt,
            token_hash -> Text,
            token_prefix -> Text,
            grant_id -> BigInt,
            label -> Text,
            created_at -> BigInt,
            expires_at -> Nullable<BigInt>,
            allowed_ips -> Text,
            last_used_at -> Nullable<BigInt>,
            revoked -> Bool,
        }
    }
    diesel::table! {
        audit_log (id) {
            id -> BigInt,
            time -> BigInt,
            channel -> Text,
            peer -> Text,
            remote_addr -> Text,
            method -> Text,
            caller -> Text,
            target -> Text,
            status -> Text,
            latency_ms -> BigInt,
            bytes_in -> BigInt,
            bytes_out -> BigInt,
            verified -> Bool,
        }
    }
    diesel::table! {
        audit_refused (minute, remote_addr, channel, reason) {
            minute -> BigInt,
            remote_addr -> Text,
            channel -> Text,
            reason -> Text,
            calls -> BigInt,
            bytes_in -> BigInt,
            first_time -> BigInt,
            last_time -> BigInt,
            samples -> Text,
            sampled -> BigInt,
        }
    }
    diesel::table! {
        replay_keys (key_hash) {
            key_hash -> Text,
            seen_at -> BigInt,
        }
    }
    diesel::table! {
        compiled_meta (id) {
            id -> Integer,
            settings_key -> Text,
            source_key -> Text,
            high_water -> BigInt,
            compiled_at -> BigInt,
            pass_from -> BigInt,
            pass_target -> BigInt,
            census_at -> BigInt,
            census_mark -> BigInt,
        }
    }
    diesel::table! {
        compiled_users (userid) {
            userid -> BigInt,
            enrolment_key -> Text,
            raw_rows -> BigInt,
            min_id -> Nullable<BigInt>,
            max_id -> Nullable<BigInt>,
            segments -> BigInt,
            first_time -> Nullable<BigInt>,
            first_id -> Nullable<BigInt>,
            tail_time -> Nullable<BigInt>,
            tail_id -> Nullable<BigInt>,
            summary -> Binary,
            tail -> Binary,
            open_blocks -> Binary,
            stale -> Bool,
        }
    }
    diesel::table! {
        compiled_segments (userid, seq) {
            userid -> BigInt,
            seq -> BigInt,
            first_time -> BigInt,
            first_id -> BigInt,
            next_time -> BigInt,
            next_id -> BigInt,
            login -> Bool,
            part -> Binary,
            row_data -> Binary,
        }
    }
    diesel::table! {
        compiled_blocks (userid, level, idx) {
            userid -> BigInt,
            level -> Integer,
            idx -> BigInt,
            part -> Binary,
        }
    }
    diesel::table! {
        compiled_dedication_meta (id) {
            id -> Integer,
            source_key -> Text,
            high_water -> BigInt,
            live_limit -> BigInt,
            legacy_limit -> BigInt,
            live_ignore -> BigInt,
            max_span -> BigInt,
        }
    }
    diesel::table! {
        compiled_dedication_block (userid, variant, level, idx) {
            userid -> BigInt,
            variant -> Integer,
            level -> Integer,
            idx -> BigInt,
            sums -> Binary,
        }
    }
    diesel::table! {
        compiled_dedication (userid, variant, course, start_time, first_id) {
            userid -> BigInt,
            variant -> Integer,
            course -> BigInt,
            start_time -> BigInt,
            first_id -> BigInt,
            end_time -> BigInt,
            row_count -> BigInt,
            days -> BigInt,
            row_data -> Binary,
        }
    }
    diesel::table! {
        compiled_census (bucket) {
            bucket -> BigInt,
            total -> BigInt,
            row_data -> Binary,
        }
    }
    diesel::table! {
        shared_keys (fingerprint) {
            fingerprint -> Text,
            is_current -> Bool,
            not_before -> BigInt,
            not_after -> BigInt,
            cert_pem -> Text,
            key_sealed -> Binary,
            kek_id -> Text,
            created_at -> BigInt,
            archived_at -> Nullable<BigInt>,
        }
    }
    diesel::table! {
        instances (id) {
            id -> Text,
            host -> Text,
            pid -> BigInt,
            version -> Text,
            listen -> Text,
            key_fingerprint -> Text,
            started_at -> BigInt,
            seen_at -> BigInt,
        }
    }
    diesel::table! {
        console_users (id) {
            id -> BigInt,
            name -> Text,
            password_hash -> Text,
            created_at -> BigInt,
            last_login_at -> Nullable<BigInt>,
        }
    }
    diesel::table! {
        console_sessions (token_hash) {
            token_hash -> Text,
            user_id -> BigInt,
            csrf -> Text,
            created_at -> BigInt,
            expires_at -> BigInt,
        }
    }
    diesel::joinable!(console_sessions -> console_users (user_id));
    diesel::allow_tables_to_appear_in_same_query!(
        peers,
        peer_certificates,
        peer_services,
        grants,
        ws_tokens,
        console_users,
        console_sessions
    );
}

/// The pseudo-peer whose publish/subscribe rows apply to every peer.
pub const ALL_HOSTS: &str = "";

/// Bumped after every write of this process to what the MNET request path reads of a peer:
/// its row (wwwroot, certificate, deletion, TLS and timeout settings) and its services (or All Hosts'). The in-memory cache of known peers compares it
/// with the value it loaded under, so a change made by this process is seen by the very
/// next call. Bumped after the commit: a load that read the old rows started before it and
/// is thrown away. One counter for every state database of the process (tests run several
/// daemons in one process): a change anywhere reloads every cache once, which is only
/// conservative. Writes of the contact and health columns (`touch_peers`,
/// `record_peer_outcome`) do not bump it: nothing on the request path reads them.
static PEERS_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn peers_generation() -> u64 {
    PEERS_GENERATION.load(std::sync::atomic::Ordering::Acquire)
}

fn peers_changed() {
    PEERS_GENERATION.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
}

/// Runs a write to peers or services, then bumps [`peers_generation`] whatever the outcome:
/// a failed write may have failed after its commit (a lost connection), and reloading costs
/// one query.
fn changing_peers<T>(write: impl FnOnce() -> T) -> T {
    let out = write();
    peers_changed();
    out
}
