//! The serve loop: accept (with back-off), admit each connection under the cap, serve it
//! over HTTP/1.1 (TLS when configured) until it ends or goes idle, and shut down gracefully.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::app::App;

use super::conn;
use super::route;
use super::tls::{tls_acceptor, tls_handshake};
use crate::console::Surface;

/// Serve connections from `listener` until `shutdown` completes; then stop accepting and
/// wait (up to 30 s) for the calls in flight, then (up to 10 s) for their audit rows.
///
/// HTTP/1.1 only: Moodle and Mahara call over HTTP/1.1 (curl), and HTTP/2's many streams
/// per connection would let two connections hold every request slot.
pub async fn run(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    crate::maintenance::load_replay_keys_at_start(&app).await;
    run_surface(app, listener, shutdown, Surface::Main).await
}

/// Serve `surface` on `listener` until `shutdown`: the main one (MNET, web services, health,
/// metrics; never the console), or the console's own.
pub async fn run_surface(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    surface: Surface,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let tls = match (&app.config.server.tls_cert, &app.config.server.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(
            &app.config.resolve(cert),
            &app.config.resolve(key),
        )?),
        _ => None,
    };
    let connections = conn::Connections::new(
        conn::connection_cap(app.config.server.max_connections, conn::fd_limit()),
        Duration::from_secs(app.config.server.idle_timeout_secs),
    );
    let builder = http1_builder(&app);
    let mut backoff = AcceptBackoff::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        backoff.failed(&e).await;
                        continue;
                    }
                };
                backoff.succeeded();
                let Some(admitted) = connections.admit() else {
                    // Every connection is busy answering: refuse this one at once rather
                    // than run out of descriptors.
                    drop(stream);
                    continue;
                };
                let app = app.clone();
                let state = admitted.state.clone();
                let service = hyper::service::service_fn(move |request| {
                    let (app, state) = (app.clone(), state.clone());
                    async move { Ok::<_, Infallible>(route(app, request, Some(remote), Some(state), surface).await) }
                });
                let builder = builder.clone();
                let watcher = graceful.watcher();
                let tls = tls.clone();
                let connections = connections.clone();
                tokio::spawn(async move {
                    let state = admitted.state.clone();
                    let stream = connections.track(stream, state.clone());
                    let serve = async {
                        match tls {
                            None => {
                                let connection = builder.serve_connection(TokioIo::new(stream), service);
                                watcher.watch(connection).await
                            }
                            Some(acceptor) => {
                                let Some(stream) = tls_handshake(&acceptor, stream).await else {
                                    return Ok(());
                                };
                                let connection = builder.serve_connection(TokioIo::new(stream), service);
                                watcher.watch(connection).await
                            }
                        }
                    };
                    tokio::select! {
                        served = serve => {
                            if let Err(e) = served {
                                tracing::debug!(error = %e, "connection ended with an error");
                            }
                        }
                        _ = connections.closing(&state) => {
                            tracing::debug!("closed an idle connection");
                        }
                    }
                    drop(admitted);
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    drain(&app, graceful).await;
    Ok(())
}

/// HTTP/1 with the header read timeout from `[limits]`.
fn http1_builder(app: &App) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(
            app.config.limits.header_read_timeout_secs,
        ));
    builder
}

/// On shutdown: lets the calls in flight finish (30 s at most), then waits for their audit
/// rows and contact times to be written (10 s at most).
async fn drain(app: &App, graceful: hyper_util::server::graceful::GracefulShutdown) {
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(30)) => {
            tracing::warn!("calls still running after 30 s; stopping anyway");
        }
    }
    app.contacts.flush();
    if tokio::time::timeout(Duration::from_secs(10), app.background.settled())
        .await
        .is_err()
    {
        tracing::warn!(
            pending = app.background.pending(),
            "audit rows still unwritten after 10 s; stopping anyway"
        );
    }
}

/// Accept errors (out of descriptors, mostly) back off exponentially up to a second and are
/// logged once a second with a count, instead of spinning and flooding the log.
#[derive(Default)]
struct AcceptBackoff {
    delay_ms: u64,
    failures: u64,
    last_logged: Option<std::time::Instant>,
}

impl AcceptBackoff {
    async fn failed(&mut self, error: &std::io::Error) {
        self.failures += 1;
        self.delay_ms = (self.delay_ms * 2).clamp(10, 1000);
        if self
            .last_logged
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
        {
            tracing::warn!(error = %error, failures = self.failures, "accept failed");
            self.last_logged = Some(std::time::Instant::now());
            self.failures = 0;
        }
        tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
    }

    fn succeeded(&mut self) {
        self.delay_ms = 0;
    }
}

/// `usestats serve`: run until SIGTERM or Ctrl-C, with the maintenance loop (key rotation
/// before expiry, audit retention), the compile passes and the key follower alongside.
pub async fn serve_forever(
    app: Arc<App>,
    listener: TcpListener,
    console: Option<TcpListener>,
) -> std::io::Result<()> {
    // The connection cap is derived from the open-files limit: make that as high as allowed.
    match conn::raise_fd_limit() {
        Some(limit) => tracing::info!(
            open_files = limit,
            max_connections = conn::connection_cap(app.config.server.max_connections, Some(limit)),
            "connection limits"
        ),
        None => tracing::warn!("could not read the open-files limit"),
    }
    let maintenance = tokio::spawn(crate::maintenance::maintenance_loop(app.clone()));
    let compiling = tokio::spawn(crate::maintenance::compile_loop(app.clone()));
    let following = tokio::spawn(crate::maintenance::keys_loop(app.clone()));
    let beating = start_heartbeat(&app, &listener);
    // The console's own listener, when it has one: stopped with the main one.
    let (stop_console, console_stopped) = tokio::sync::oneshot::channel::<()>();
    let console = console.map(|listener| {
        tokio::spawn(run_surface(
            app.clone(),
            listener,
            async {
                let _ = console_stopped.await;
            },
            Surface::Console,
        ))
    });
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("shutting down: finishing the calls in flight");
    };
    let result = run(app, listener, shutdown).await;
    let _ = stop_console.send(());
    if let Some(console) = console {
        let _ = console.await;
    }
    maintenance.abort();
    compiling.abort();
    following.abort();
    // After the calls in flight: the instance is listed for as long as it answers.
    if let Some(beating) = beating {
        beating.stop().await;
    }
    result
}

/// This instance's heartbeat (`instances`), beating until shutdown. Without an identity
/// (no random bytes) the daemon serves anyway, unlisted.
fn start_heartbeat(app: &Arc<App>, listener: &TcpListener) -> Option<crate::instances::Beating> {
    let listen = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| app.config.server.listen.clone());
    match crate::instances::Identity::new(&listen, app.now()) {
        Ok(identity) => {
            tracing::info!(instance = %identity.id, host = %identity.host, "instance heartbeat started");
            let heartbeat = crate::instances::Heartbeat::new(
                identity,
                app.state.clone(),
                app.keys.clone(),
                app.clock.clone(),
            );
            Some(Arc::new(heartbeat).spawn())
        }
        Err(e) => {
            tracing::warn!(error = %e, "no instance heartbeat: doctor and /metrics will not list this instance");
            None
        }
    }
}
