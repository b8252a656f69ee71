//! `/metrics` for Prometheus, on a listener of its own: loopback by default, so the
//! numbers of a public server are not public.
//!
//! ```text
//!  scrape ──► read counts from signaling and TURN ──► gauges/counters (a local recorder)
//!         ◄── Prometheus text ◄── PrometheusHandle::render
//! ```
//!
//! Nothing is recorded on the hot paths: every figure is read from the state that exists
//! anyway (the hub, the TURN server's counters, the tally of the hub's events) at scrape
//! time.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics::{counter, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::MetricsListen;
use crate::signaling::Signaling;
use crate::signaling::events::EventCounts;
use crate::turn::TurnMonitor;

/// What a scrape reads.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// None on a TURN-only node (`duet turn`).
    signaling: Option<Arc<Signaling>>,
    turn: Option<TurnMonitor>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new(signaling: Option<Arc<Signaling>>, turn: Option<TurnMonitor>) -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        Self { recorder, handle, signaling, turn }
    }

    /// The current figures in Prometheus's text format.
    pub fn render(&self) -> String {
        metrics::with_local_recorder(&self.recorder, || {
            if let Some(signaling) = &self.signaling {
                let signaling = signaling.counts();
                gauge!("duet_signaling_connections").set(signaling.connections as f64);
                gauge!("duet_signaling_users").set(signaling.users as f64);
                gauge!("duet_signaling_calls").set(signaling.calls as f64);
                counter!("duet_signaling_rejected_messages_total").absolute(signaling.rejected);
                render_events(&signaling.events);
                for (outcome, count) in signaling.push.into_iter().flatten() {
                    counter!("duet_push_total", "outcome" => outcome).absolute(count);
                }
                if let Some(cluster) = signaling.cluster {
                    gauge!("duet_cluster_nodes").set(cluster.nodes as f64);
                    gauge!("duet_cluster_rooms").set(cluster.rooms as f64);
                    gauge!("duet_cluster_relayed_sockets").set(cluster.relayed as f64);
                    gauge!("duet_cluster_remote_clients").set(cluster.remote as f64);
                    counter!("duet_cluster_lost_messages_total").absolute(cluster.lost);
                    for (reason, count) in cluster.refused {
                        counter!("duet_cluster_refused_messages_total", "reason" => reason).absolute(count);
                    }
                }
            }
            if let Some(turn) = &self.turn {
                let (allocations, stats) = turn.snapshot();
                gauge!("duet_turn_allocations").set(allocations as f64);
                counter!("duet_turn_allocations_created_total").absolute(stats.allocations_created);
                counter!("duet_turn_relayed_packets_total", "direction" => "to-peers")
                    .absolute(stats.relayed_to_peers);
                counter!("duet_turn_relayed_packets_total", "direction" => "to-clients")
                    .absolute(stats.relayed_to_clients);
                counter!("duet_turn_relayed_bytes_total", "direction" => "to-peers")
                    .absolute(stats.relayed_to_peers_bytes);
                counter!("duet_turn_relayed_bytes_total", "direction" => "to-clients")
                    .absolute(stats.relayed_to_clients_bytes);
                counter!("duet_turn_client_packets_dropped_total").absolute(stats.client_packets_dropped);
                counter!("duet_turn_peer_packets_dropped_total").absolute(stats.peer_packets_dropped);
                counter!("duet_turn_unauthenticated_dropped_total").absolute(stats.unauthenticated_dropped);
                counter!("duet_turn_peer_denied_total").absolute(stats.peer_denied);
            }
        });
        self.handle.render()
    }
}

/// Sessions and calls by how they went, from the hub's events.
fn render_events(events: &EventCounts) {
    counter!("duet_signaling_sessions_total", "event" => "started").absolute(events.sessions_started);
    counter!("duet_signaling_sessions_total", "event" => "resumed").absolute(events.sessions_resumed);
    for &(why, count) in &events.sessions_ended {
        counter!("duet_signaling_sessions_ended_total", "why" => why).absolute(count);
    }
    counter!("duet_signaling_calls_total", "event" => "rung").absolute(events.calls_rung);
    counter!("duet_signaling_calls_total", "event" => "answered").absolute(events.calls_answered);
    counter!("duet_signaling_calls_total", "event" => "restored").absolute(events.calls_restored);
    for &(reason, count) in &events.calls_ended {
        counter!("duet_signaling_calls_ended_total", "reason" => reason).absolute(count);
    }
    counter!("duet_signaling_service_calls_total", "event" => "started").absolute(events.service_calls);
    counter!("duet_signaling_service_calls_total", "event" => "busy").absolute(events.service_calls_busy);
}

/// Binds the metrics listener: a chosen address that is taken stops duet, the default
/// one only turns metrics off (another duet on this machine may hold it).
pub async fn bind(at: MetricsListen) -> anyhow::Result<Option<TcpListener>> {
    match TcpListener::bind(at.addr).await {
        Ok(listener) => {
            if !at.addr.ip().is_loopback() {
                tracing::warn!("metrics are served to the network on http://{}/metrics", at.addr);
            }
            Ok(Some(listener))
        }
        Err(e) if !at.chosen => {
            tracing::warn!(
                "no metrics endpoint: cannot bind {} ({e}); choose one with --metrics-listen",
                at.addr
            );
            Ok(None)
        }
        Err(e) => Err(anyhow::Error::from(e).context(format!("bind metrics {}", at.addr))),
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let app = Router::new().route("/metrics", get(scrape)).with_state(metrics);
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await {
        tracing::warn!("metrics endpoint stopped: {e}");
    }
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics.render())
}
