//! `rkind trace`: reads the API server's debug endpoint with the cluster's admin
//! credentials and prints the sessions as a narrative, JSON, Mermaid or HTML.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt;

use super::model::Trace;
use super::render;
use crate::cluster::state::ClusterState;

/// How `rkind trace` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A numbered narrative per session.
    Text,
    /// `{"schemaVersion":1,"traces":[…]}` (with `--follow`: one trace per line).
    Json,
    /// A Mermaid sequence diagram per session.
    Mermaid,
    /// One self-contained HTML page.
    Html,
}

/// Why `rkind trace` failed.
#[derive(Debug, thiserror::Error)]
pub enum TraceCliError {
    /// The cluster's state or credentials could not be read.
    #[error("cannot read cluster {0}: {1} (is it created? try `rkind status`)")]
    Cluster(String, String),
    /// The API server refused or could not be reached.
    #[error("{0}")]
    Api(String),
    /// A flag combination that cannot work.
    #[error("{0}")]
    Usage(String),
}

/// An API client with the cluster's admin credentials (what its kubeconfig holds).
pub fn admin_client(data_dir: &Path) -> Result<crate::client::ApiClient, TraceCliError> {
    let st = ClusterState::load(data_dir)
        .map_err(|e| TraceCliError::Cluster(data_dir.display().to_string(), e.to_string()))?;
    let node = crate::cluster::node_name(&st.name);
    let pki = crate::pki::ClusterPki::load_or_create(&data_dir.join("pki"), &node)
        .map_err(|e| TraceCliError::Cluster(data_dir.display().to_string(), e.to_string()))?;
    let tls = pki
        .client_tls(&pki.admin)
        .map_err(|e| TraceCliError::Cluster(data_dir.display().to_string(), e.to_string()))?;
    Ok(crate::client::ApiClient::new(
        SocketAddr::from(([127, 0, 0, 1], st.api_port)),
        tls,
    ))
}

fn print(traces: &[Trace], format: Format) {
    match format {
        Format::Text => {
            if traces.is_empty() {
                println!(
                    "No sessions recorded yet. Run e.g. `kubectl exec POD -- true`, then try again."
                );
            }
            for t in traces {
                println!("{}", render::text(t));
            }
        }
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&render::json(traces)).unwrap_or_default()
        ),
        Format::Mermaid => {
            for t in traces {
                println!("{}", render::mermaid(t));
            }
        }
        Format::Html => print!("{}", render::html(traces)),
    }
}

/// Prints the last `limit` sessions of `kind` ("" = all), or follows new ones.
pub async fn show(
    data_dir: &Path,
    kind: &str,
    limit: usize,
    follow: bool,
    format: Format,
) -> Result<(), TraceCliError> {
    if follow && format == Format::Html {
        return Err(TraceCliError::Usage(
            "--follow prints sessions as they end: use -o text, json or mermaid".into(),
        ));
    }
    let api = Arc::new(admin_client(data_dir)?);
    let path = format!(
        "{}?kind={kind}&limit={limit}{}",
        crate::apiserver::debug_traces::PATH,
        if follow { "&follow=true" } else { "" }
    );
    if !follow {
        let v = api
            .get(&path)
            .await
            .map_err(|e| TraceCliError::Api(format!("reading traces: {e}")))?;
        let traces: Vec<Trace> = serde_json::from_value(v["traces"].clone())
            .map_err(|e| TraceCliError::Api(format!("unexpected trace document: {e}")))?;
        print(&traces, format);
        return Ok(());
    }
    let events = api
        .watch(&path)
        .await
        .map_err(|e| TraceCliError::Api(format!("following traces: {e}")))?;
    let mut events = std::pin::pin!(events);
    eprintln!(
        "Following {} sessions (Ctrl-C to stop) ...",
        if kind.is_empty() { "all" } else { kind }
    );
    while let Some(ev) = events.next().await {
        let v = ev.map_err(|e| TraceCliError::Api(e.to_string()))?;
        let t: Trace = serde_json::from_value(v)
            .map_err(|e| TraceCliError::Api(format!("unexpected trace: {e}")))?;
        match format {
            Format::Json => println!("{}", serde_json::to_string(&t).unwrap_or_default()),
            other => print(std::slice::from_ref(&t), other),
        }
    }
    Ok(())
}
