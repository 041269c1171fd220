//! The peer_services table: what each peer (or All Hosts) publishes and subscribes to.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::*;
use crate::store::{DbConnection, StoreError};

use super::{all_hosts, changing_peers};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = peer_services)]
pub struct PeerService {
    pub peer_id: i64,
    pub service: String,
    pub publish: bool,
    pub subscribe: bool,
}

/// Set publish and/or subscribe for one peer (or the All Hosts row) and one service.
pub fn set_service(
    conn: &mut DbConnection,
    peer_id: i64,
    service: &str,
    publish: Option<bool>,
    subscribe: Option<bool>,
) -> Result<PeerService, StoreError> {
    changing_peers(|| {
        crate::store::write_transaction(conn, |conn| {
            let existing: Option<PeerService> = peer_services::table
                .filter(peer_services::peer_id.eq(peer_id))
                .filter(peer_services::service.eq(service))
                .select(PeerService::as_select())
                .first(conn)
                .optional()?;
            let row = PeerService {
                peer_id,
                service: service.to_string(),
                publish: publish.unwrap_or(existing.as_ref().is_some_and(|e| e.publish)),
                subscribe: subscribe.unwrap_or(existing.as_ref().is_some_and(|e| e.subscribe)),
            };
            if existing.is_some() {
                diesel::update(
                    peer_services::table
                        .filter(peer_services::peer_id.eq(peer_id))
                        .filter(peer_services::service.eq(service)),
                )
                .set((
                    peer_services::publish.eq(row.publish),
                    peer_services::subscribe.eq(row.subscribe),
                ))
                .execute(conn)?;
            } else {
                diesel::insert_into(peer_services::table)
                    .values((
                        peer_services::peer_id.eq(peer_id),
                        peer_services::service.eq(service),
                        peer_services::publish.eq(row.publish),
                        peer_services::subscribe.eq(row.subscribe),
                    ))
                    .execute(conn)?;
            }
            Ok(row)
        })
    })
}

/// The peer's own rows merged with the All Hosts rows: a service is published (or
/// subscribed) when either row says so. Moodle looks at whichever row its database returns
/// first (docs/protocol.md A4); the union is the predictable reading of "published to it or
/// to all hosts".
pub fn effective_services(
    conn: &mut DbConnection,
    peer_id: i64,
) -> Result<Vec<PeerService>, StoreError> {
    let all = all_hosts(conn)?;
    let rows: Vec<PeerService> = peer_services::table
        .filter(peer_services::peer_id.eq_any([peer_id, all.id]))
        .select(PeerService::as_select())
        .load(conn)?;
    let mut merged: Vec<PeerService> = Vec::new();
    for row in rows {
        match merged.iter_mut().find(|m| m.service == row.service) {
            Some(m) => {
                m.publish |= row.publish;
                m.subscribe |= row.subscribe;
            }
            None => merged.push(PeerService { peer_id, ..row }),
        }
    }
    merged.sort_by(|a, b| a.service.cmp(&b.service));
    Ok(merged)
}

pub fn own_services(conn: &mut DbConnection, peer_id: i64) -> Result<Vec<PeerService>, StoreError> {
    Ok(peer_services::table
        .filter(peer_services::peer_id.eq(peer_id))
        .order(peer_services::service.asc())
        .select(PeerService::as_select())
        .load(conn)?)
}

pub fn is_published(
    conn: &mut DbConnection,
    peer_id: i64,
    service: &str,
) -> Result<bool, StoreError> {
    Ok(effective_services(conn, peer_id)?
        .iter()
        .any(|s| s.service == service && s.publish))
}

pub fn is_subscribed(
    conn: &mut DbConnection,
    peer_id: i64,
    service: &str,
) -> Result<bool, StoreError> {
    Ok(effective_services(conn, peer_id)?
        .iter()
        .any(|s| s.service == service && s.subscribe))
}
