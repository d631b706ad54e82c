//! The objects every cluster starts with: the system namespaces, the `kubernetes`
//! Service and the built-in PriorityClasses. Created once at start (idempotently), as
//! kube-apiserver's bootstrap controller and post-start hooks do, with the API server's
//! loopback identity (`system:apiserver` in `system:masters`).

use serde_json::{Value, json};

use super::{ControllerError, code, post_json};

/// The namespaces every cluster has.
pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates the bootstrap objects that do not exist yet.
pub async fn ensure(client: &kube_client::Client, api_port: u16) -> Result<(), ControllerError> {
    for ns in SYSTEM_NAMESPACES {
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        create(
            client,
            "/api/v1/namespaces",
            &body,
            &format!("namespace {ns}"),
        )
        .await?;
    }
    let svc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": api_port}]},
    });
    create(
        client,
        "/api/v1/namespaces/default/services",
        &svc,
        "service default/kubernetes",
    )
    .await?;
    // Upstream's scheduling post-start hook: the built-in PriorityClasses (their deletion
    // is refused by the Priority admission plugin).
    use crate::apiserver::kinds::scheduling::priorityclass::{SYSTEM_CLASSES, system_class};
    for (name, value, description) in SYSTEM_CLASSES {
        let pc = system_class(name, value, description);
        let path = "/apis/scheduling.k8s.io/v1/priorityclasses";
        create(client, path, &pc, &format!("priorityclass {name}")).await?;
    }
    // The bootstrap RBAC policy (upstream's rbac/bootstrap-roles post-start hook),
    // reconciled with what is stored at every start.
    for (path, obj) in crate::apiserver::authz::bootstrap::policy() {
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let what = format!("{} {name}", obj["kind"].as_str().unwrap_or(""));
        // Only what was there already can lack anything.
        if create(client, path, &obj, &what).await? == Created::Existed {
            reconcile(client, &format!("{path}/{name}"), &obj, &what).await?;
        }
    }
    Ok(())
}

/// Adds to the stored bootstrap object at `path` what `wanted` has and it lacks.
async fn reconcile(
    client: &kube_client::Client,
    path: &str,
    wanted: &Value,
    what: &str,
) -> Result<(), ControllerError> {
    use super::api_resources::request_json;
    let failed = |source| ControllerError::Request {
        component: "kube-apiserver",
        what: format!("reconciling {what}"),
        source,
    };
    let stored = request_json(client, http::Method::GET, path, None)
        .await
        .map_err(failed)?;
    let Some(updated) = crate::apiserver::authz::bootstrap::reconciled(&stored, wanted) else {
        return Ok(());
    };
    tracing::info!(object = what, "reconciling the bootstrap policy");
    match request_json(client, http::Method::PUT, path, Some(&updated)).await {
        // Changed meanwhile: the next start looks again.
        Err(e) if code(&e) == 409 => Ok(()),
        r => r.map(|_| ()).map_err(failed),
    }
}

/// Whether a bootstrap object was made now or was stored already.
#[derive(Debug, PartialEq, Eq)]
enum Created {
    Now,
    Existed,
}

async fn create(
    client: &kube_client::Client,
    path: &str,
    body: &Value,
    what: &str,
) -> Result<Created, ControllerError> {
    match post_json(client, path, body).await {
        Ok(_) => Ok(Created::Now),
        Err(e) if code(&e) == 409 => Ok(Created::Existed),
        Err(source) => Err(ControllerError::Request {
            component: "kube-apiserver",
            what: format!("creating {what}"),
            source,
        }),
    }
}
