//! The shared_keys table: our key pairs when several instances share a PostgreSQL state.
//! The private key is stored sealed (crypto::kek); this file only moves rows.
