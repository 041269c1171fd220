//! The services we publish and the methods in them, as `system/listServices`,
//! `system/listMethods`, `system/methodSignature` and `system/methodHelp` report them and
//! as the dispatcher finds them.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use crate::mnet::node::Node;
use crate::store::state::Peer;
use crate::xmlrpc::{Fault, Value};

pub type MethodFuture = Pin<Box<dyn Future<Output = Result<Value, Fault>> + Send>>;
pub type Handler = Arc<dyn Fn(Arc<Node>, CallContext, Vec<Value>) -> MethodFuture + Send + Sync>;

/// Who is calling: the peer whose signature verified, and from where.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub peer: Peer,
    pub remote_addr: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: &'static str,
    pub kind: &'static str,
    pub description: &'static str,
}

pub struct Method {
    /// The exact XML-RPC path peers call (use the string `system/listMethods` returns, A3).
    pub path: &'static str,
    pub help: &'static str,
    pub params: Vec<Param>,
    pub returns: (&'static str, &'static str),
    pub handler: Handler,
}

pub struct Service {
    pub name: &'static str,
    pub apiversion: i64,
    pub methods: Vec<Method>,
}

pub struct Services {
    pub list: Vec<Service>,
}

impl Services {
    /// The registry is assembled where the node is built (`Node::open`), so this layer never
    /// names a service.
    pub fn new(list: Vec<Service>) -> Services {
        Services { list }
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.list.iter().find(|s| s.name == name)
    }

    pub fn find(&self, path: &str) -> Option<(&Service, &Method)> {
        self.list
            .iter()
            .flat_map(|s| s.methods.iter().map(move |m| (s, m)))
            .find(|(_, m)| m.path == path)
    }
}

impl Method {
    /// `system/methodSignature`'s struct, shaped like Moodle's profile.
    pub fn signature(&self) -> Value {
        let params = self
            .params
            .iter()
            .map(|p| {
                Value::Struct(vec![
                    ("name".into(), p.name.into()),
                    ("type".into(), p.kind.into()),
                    ("description".into(), p.description.into()),
                ])
            })
            .collect();
        Value::Struct(vec![
            ("parameters".into(), Value::Array(params)),
            (
                "return".into(),
                Value::Struct(vec![
                    ("type".into(), self.returns.0.into()),
                    ("description".into(), self.returns.1.into()),
                ]),
            ),
        ])
    }
}

/// Moodle's check on method names (§3.4); dotted names such as `system.keyswap` fail it.
pub fn valid_method_name(name: &str) -> bool {
    let Some((first, rest)) = name.split_once('/') else {
        return false;
    };
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let Some((path, function)) = rest.rsplit_once('/') else {
        // `system/keyswap`: the second part is the function itself.
        return !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    };
    !path.is_empty()
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b))
        && !function.is_empty()
        && function
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::valid_method_name;

    #[test]
    fn method_name_pattern() {
        assert!(valid_method_name("system/keyswap"));
        assert!(valid_method_name(
            "blocks/use_stats/rpclib.php/use_stats_rpc_get_stats"
        ));
        assert!(valid_method_name("auth/mnet/auth.php/user_authorise"));
        assert!(!valid_method_name("system.keyswap"));
        assert!(!valid_method_name("/x"));
        assert!(!valid_method_name("a/b c"));
        assert!(!valid_method_name(""));
    }
}
