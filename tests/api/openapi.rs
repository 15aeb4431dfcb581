//! `GET /openapi.json`: served without authentication, describing every route that
//! exists (and only those: the route list in `src/http/routes.rs` builds both),
//! and identical to the committed `docs/openapi.json`.
//! Regenerate that file with `HR_BRIDGE_UPDATE_OPENAPI=1 cargo test --test api openapi`.

use hr_bridge::db::Backend;

use crate::helpers::{TestApp, TestDb, OMFLOW_PASSWORD, OMFLOW_USER};

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");

async fn app() -> TestApp {
    TestDb::create(Backend::Sqlite)
        .await
        .expect("SQLite is always there")
        .spawn()
        .await
}

async fn served(app: &TestApp) -> String {
    let response = app
        .client
        .get(format!("{}/openapi.json", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "served without authentication");
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn openapi_json_matches_the_committed_docs_file() {
    let app = app().await;
    let served = served(&app).await;
    if std::env::var_os("HR_BRIDGE_UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, format!("{served}\n")).expect("write docs/openapi.json");
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed.trim_end() == served,
        "docs/openapi.json differs from what the code serves; regenerate it with \
         HR_BRIDGE_UPDATE_OPENAPI=1 cargo test --test api openapi and commit it"
    );
}

#[tokio::test]
async fn openapi_describes_every_route_auth_and_the_fail_envelope() {
    let app = app().await;
    let doc: serde_json::Value = serde_json::from_str(&served(&app).await).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut operations: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    operations.sort();
    // The route list builds the router and this document together, so the
    // document's operations are the routes; OMFLOW's two must be among them.
    for operation in [("POST", "/authenticate"), ("POST", "/sync")] {
        assert!(
            operations.contains(&(operation.0.to_owned(), operation.1.to_owned())),
            "{operation:?} is not described"
        );
    }
    let scheme = &doc["components"]["securitySchemes"]["omflow_basic_auth"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "basic");
    for path in ["/sync", "/authenticate"] {
        let operation = &paths[path]["post"];
        assert_eq!(
            operation["security"][0]["omflow_basic_auth"],
            serde_json::json!([])
        );
        let responses = operation["responses"].as_object().unwrap();
        for status in ["200", "401", "413", "503"] {
            assert!(responses.contains_key(status), "{path} lacks {status}");
        }
        assert!(
            responses["401"]["headers"]
                .as_object()
                .is_some_and(|h| h.contains_key("WWW-Authenticate")),
            "{path}: 401 must name its challenge"
        );
    }
    assert!(paths["/sync"]["post"]["responses"]
        .as_object()
        .unwrap()
        .contains_key("409"));
    assert!(paths["/authenticate"]["post"]["responses"]
        .as_object()
        .unwrap()
        .contains_key("400"));
    let envelope = &doc["components"]["schemas"]["FailEnvelope"];
    assert_eq!(
        envelope["required"],
        serde_json::json!(["status", "message"])
    );

    // Every documented operation exists: none answers 404 or 405; and a
    // documented path takes no method the document does not name: 405.
    for path in paths.keys() {
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            let request = app
                .client
                .request(method.parse().unwrap(), format!("{}{path}", app.base_url))
                .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
                .json(&serde_json::json!({"username": "ghost", "password": "x"}));
            let status = request.send().await.unwrap().status().as_u16();
            if operations.contains(&(method.to_owned(), path.clone())) {
                assert!(
                    ![404, 405].contains(&status),
                    "{method} {path} answered {status}"
                );
            } else {
                assert_eq!(status, 405, "{method} {path} is not described");
            }
        }
    }
}
