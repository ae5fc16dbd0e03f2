//! Attachments: upload through the GraphQL multipart request spec, metadata and checksum, the
//! authenticated download, the content-type allowlist and size limit (rejections write nothing,
//! on disk either), redaction deleting files, multipart transport rules, tenancy.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::TestApp;
use crate::messages::{archive_channel, inbox, uuid_of, written};

const SEND: &str = "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
  message { id text attachments { id filename contentType size checksum url } }
  userErrors { field message code } } }";

/// The app with attachments stored in a fresh temporary folder.
async fn spawn(configure: impl FnOnce(&mut switchboard::Config)) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let app = TestApp::spawn_with(move |c| {
        c.attachments_dir = path;
        configure(c);
    })
    .await;
    (app, dir)
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A file part: name, content type (none when empty) and bytes.
type File = (&'static str, &'static str, Vec<u8>);

/// The multipart form of a `sendMessage` with `files` as `input.attachments`.
fn form(input: Value, files: Vec<File>) -> Form {
    let mut input = input;
    input["attachments"] = json!(vec![Value::Null; files.len()]);
    let operations = json!({ "query": SEND, "variables": { "input": input } });
    let map: serde_json::Map<String, Value> = (0..files.len())
        .map(|i| {
            (
                i.to_string(),
                json!([format!("variables.input.attachments.{i}")]),
            )
        })
        .collect();
    let mut form = Form::new()
        .text("operations", operations.to_string())
        .text("map", Value::Object(map).to_string());
    for (i, (name, content_type, bytes)) in files.into_iter().enumerate() {
        let mut part = Part::bytes(bytes).file_name(name);
        if !content_type.is_empty() {
            part = part.mime_str(content_type).expect("mime");
        }
        form = form.part(i.to_string(), part);
    }
    form
}

async fn post_form(app: &TestApp, token: Option<&str>, form: Form) -> (StatusCode, Value) {
    let mut request = app.client.post(app.url("/graphql")).multipart(form);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("send");
    let status = response.status();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn upload(app: &TestApp, token: &str, input: Value, files: Vec<File>) -> Value {
    let (status, body) = post_form(app, Some(token), form(input, files)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["sendMessage"].clone()
}

async fn download(app: &TestApp, token: Option<&str>, url: &str) -> reqwest::Response {
    let mut request = app.client.get(app.url(url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("download")
}

/// POSTs `body` to /graphql with chunked transfer encoding (no Content-Length) over a plain TCP
/// stream; returns the status and the response text.
async fn chunked_post(app: &TestApp, content_type: &str, body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.org.token
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    // The server may answer and close before the body ends: later writes may fail.
    for chunk in body.chunks(1_000) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes).await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..3000u32).map(|i| (i % 251) as u8));
    bytes
}

#[tokio::test]
async fn uploaded_attachments_are_stored_and_downloaded_back_by_the_organization() {
    let (app, dir) = spawn(|_| {}).await;
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let inbox = inbox(&app).await;
    let image = png();
    let notes = "line one\nline two\n".as_bytes().to_vec();
    let sent = upload(
        &app,
        &agent,
        json!({ "conversationId": inbox.email, "text": "See attached" }),
        vec![
            ("photo.png", "image/png", image.clone()),
            ("../notes.txt", "text/plain; charset=utf-8", notes.clone()),
        ],
    )
    .await;
    assert_eq!(sent["userErrors"], json!([]), "{sent}");
    let attachments = sent["message"]["attachments"].clone();
    let ids: Vec<Value> = (0..2).map(|i| attachments[i]["id"].clone()).collect();
    assert_eq!(
        attachments,
        json!([
            { "id": ids[0], "filename": "photo.png", "contentType": "image/png", "size": image.len(),
              "checksum": sha256(&image), "url": format!("/attachments/{}", ids[0].as_str().unwrap_or_default()) },
            { "id": ids[1], "filename": "notes.txt", "contentType": "text/plain", "size": notes.len(),
              "checksum": sha256(&notes), "url": format!("/attachments/{}", ids[1].as_str().unwrap_or_default()) }
        ])
    );
    // On disk under <dir>/<organization>/<attachment>, nothing left in staging.
    let org = uuid_of(&json!(app.org.org_id)).simple().to_string();
    let mut stored = files_under(dir.path());
    stored.sort();
    let mut expected: Vec<PathBuf> = ids
        .iter()
        .map(|id| dir.path().join(&org).join(uuid_of(id).simple().to_string()))
        .collect();
    expected.sort();
    assert_eq!(stored, expected);

    for (i, (bytes, content_type, disposition)) in [
        (
            &image,
            "image/png",
            "attachment; filename=\"photo.png\"; filename*=UTF-8''photo.png",
        ),
        (
            &notes,
            "text/plain",
            "attachment; filename=\"notes.txt\"; filename*=UTF-8''notes.txt",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let url = attachments[i]["url"].as_str().expect("url");
        let response = download(&app, Some(&app.org.token), url).await;
        assert_eq!(response.status(), StatusCode::OK);
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("<missing>")
                .to_string()
        };
        assert_eq!(header("content-type"), content_type);
        assert_eq!(header("content-disposition"), disposition);
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("content-length"), bytes.len().to_string());
        let body = response.bytes().await.expect("body");
        assert_eq!(&body[..], &bytes[..]);
        assert_eq!(
            sha256(&body),
            attachments[i]["checksum"].as_str().unwrap_or("")
        );
    }

    // Reachable as a node; another organization gets 404 and null; no token 401.
    let node = app
        .data(
            &agent,
            "query($id: ID!) { node(id: $id) { ... on Attachment { filename } } }",
            json!({ "id": ids[0] }),
        )
        .await;
    assert_eq!(node["node"]["filename"], json!("photo.png"));
    let url = attachments[0]["url"].as_str().expect("url");
    let other = app.create_org("Other", "other", "owner@other.test").await;
    let response = download(&app, Some(&other.token), url).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let node = app
        .data(
            &other.token,
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": ids[0] }),
        )
        .await;
    assert_eq!(node["node"], Value::Null);
    let response = download(&app, None, url).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    let response = download(&app, Some("not-a-token"), url).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    for bad in ["/attachments/nonsense", "/attachments/"] {
        let response = download(&app, Some(&app.org.token), bad).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{bad}");
    }
    let message_as_attachment = format!(
        "/attachments/{}",
        sent["message"]["id"].as_str().unwrap_or_default()
    );
    let response = download(&app, Some(&app.org.token), &message_as_attachment).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn forbidden_types_and_oversized_files_are_refused_and_nothing_is_written() {
    let (app, dir) = spawn(|c| c.max_attachment_bytes = 1024).await;
    let token = app.org.token.clone();
    let inbox = inbox(&app).await;
    let rows = written(&app).await;
    let input = json!({ "conversationId": inbox.email, "text": "Files" });
    let cases: Vec<(Vec<File>, Value)> = vec![
        (
            vec![("setup.exe", "application/x-msdownload", b"MZ".to_vec())],
            json!([{ "field": ["input", "attachments", "0"], "code": "INVALID",
                "message": "\"setup.exe\" has content type application/x-msdownload, which is not allowed; allowed: image/png, image/jpeg, image/gif, image/webp, application/pdf, text/plain, text/csv, audio/mpeg, audio/ogg, video/mp4" }]),
        ),
        (
            vec![
                ("ok.txt", "text/plain", b"fine".to_vec()),
                ("big.png", "image/png", png()),
            ],
            json!([{ "field": ["input", "attachments", "1"], "code": "TOO_LONG",
                "message": "\"big.png\" is 3008 bytes; attachments may have at most 1024 bytes" }]),
        ),
        (
            vec![("blob", "", b"??".to_vec())],
            json!([{ "field": ["input", "attachments", "0"], "code": "INVALID",
                "message": "\"blob\" has content type application/octet-stream, which is not allowed; allowed: image/png, image/jpeg, image/gif, image/webp, application/pdf, text/plain, text/csv, audio/mpeg, audio/ogg, video/mp4" }]),
        ),
        (
            vec![("empty.txt", "text/plain", Vec::new())],
            json!([{ "field": ["input", "attachments", "0"], "code": "INVALID", "message": "\"empty.txt\" is empty" }]),
        ),
        (
            (0..11)
                .map(|_| ("a.txt", "text/plain", b"a".to_vec()))
                .collect(),
            json!([{ "field": ["input", "attachments"], "code": "TOO_LONG",
                "message": "a message takes at most 10 attachments, got 11" }]),
        ),
    ];
    for (files, errors) in cases {
        let answer = upload(&app, &token, input.clone(), files).await;
        assert_eq!(
            answer,
            json!({ "message": null, "userErrors": errors }),
            "{errors}"
        );
        assert_eq!(written(&app).await, rows, "{errors}");
        assert_eq!(files_under(dir.path()), Vec::<PathBuf>::new(), "{errors}");
    }

    // Valid files refused for a business rule (archived channel) leave nothing either: the
    // staged copies are deleted.
    archive_channel(&app, &inbox.email_channel).await;
    let rows = written(&app).await;
    let answer = upload(
        &app,
        &token,
        input,
        vec![("ok.txt", "text/plain", b"fine".to_vec())],
    )
    .await;
    assert_eq!(
        answer["userErrors"],
        json!([{ "field": ["input", "conversationId"], "code": "INVALID_STATE", "message": "the conversation's channel: the channel is archived" }])
    );
    assert_eq!(written(&app).await, rows);
    assert_eq!(files_under(dir.path()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn redaction_deletes_attachment_files_and_removal_hides_them() {
    let (app, dir) = spawn(|_| {}).await;
    let token = app.org.token.clone();
    let inbox = inbox(&app).await;
    let first = upload(
        &app,
        &token,
        json!({ "conversationId": inbox.email }),
        vec![("a.csv", "text/csv", b"a,b\n1,2\n".to_vec())],
    )
    .await;
    let second = upload(
        &app,
        &token,
        json!({ "conversationId": inbox.email, "text": "more" }),
        vec![("b.pdf", "application/pdf", b"%PDF-1.4".to_vec())],
    )
    .await;
    assert_eq!(files_under(dir.path()).len(), 2);
    let redact = app
        .data(
            &token,
            "mutation($input: RedactMessageInput!) { redactMessage(input: $input) { message { text attachments { id } redactedAt } userErrors { code } } }",
            json!({ "input": { "messageId": first["message"]["id"] } }),
        )
        .await;
    assert_eq!(redact["redactMessage"]["message"]["attachments"], json!([]));
    assert_eq!(app.count("attachments").await, 1);
    assert_eq!(files_under(dir.path()).len(), 1);
    let url = first["message"]["attachments"][0]["url"]
        .as_str()
        .expect("url");
    assert_eq!(
        download(&app, Some(&token), url).await.status(),
        StatusCode::NOT_FOUND
    );

    let url = second["message"]["attachments"][0]["url"]
        .as_str()
        .expect("url");
    assert_eq!(
        download(&app, Some(&token), url).await.status(),
        StatusCode::OK
    );
    let removed = app
        .data(
            &token,
            "mutation($input: RemoveMessageInput!) { removeMessage(input: $input) { message { text attachments { id } } userErrors { code } } }",
            json!({ "input": { "messageId": second["message"]["id"] } }),
        )
        .await;
    assert_eq!(
        removed["removeMessage"]["message"],
        json!({ "text": null, "attachments": [] })
    );
    assert_eq!(
        download(&app, Some(&token), url).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn multipart_needs_a_bearer_token_and_is_size_limited() {
    let (app, dir) = spawn(|c| {
        c.max_body_bytes = 2_000;
        c.max_attachment_bytes = 1_000;
    })
    .await;
    let inbox = inbox(&app).await;
    let rows = written(&app).await;
    let input = json!({ "conversationId": inbox.email, "text": "x" });
    let small = || vec![("a.txt", "text/plain", b"hi".to_vec())];

    let (status, body) = post_form(&app, None, form(input.clone(), small())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({ "errors": [{ "message": "multipart requests need an `Authorization: Bearer <token>` header",
            "extensions": { "code": "UNAUTHENTICATED" } }] })
    );
    // An API key header is not enough for multipart.
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("x-api-key", &app.org.token)
        .multipart(form(input.clone(), small()))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Over max_body_bytes + 10 × max_attachment_bytes.
    let big = vec![("big.txt", "text/plain", vec![b'a'; 13_000])];
    let (status, body) = post_form(&app, Some(&app.org.token), form(input.clone(), big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        json!("PAYLOAD_TOO_LARGE")
    );

    // The same without Content-Length (chunked): the limit holds while the body streams in.
    let boundary = "sbboundary";
    let operations = json!({ "query": SEND, "variables": { "input": { "conversationId": inbox.email, "attachments": [null] } } });
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{\"0\": [\"variables.input.attachments.0\"]}}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"big.txt\"\r\nContent-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    body.extend(vec![b'a'; 13_000]);
    body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    let (status, response) = chunked_post(
        &app,
        &format!("multipart/form-data; boundary={boundary}"),
        &body,
    )
    .await;
    assert_eq!(status, 413, "{response}");
    assert!(response.contains("PAYLOAD_TOO_LARGE"), "{response}");

    // Malformed multipart and a missing map are 400.
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.org.token)
        .header("content-type", "multipart/form-data; boundary=x")
        .body("garbage")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let no_map = Form::new().text(
        "operations",
        json!({ "query": SEND, "variables": { "input": input } }).to_string(),
    );
    let (status, _) = post_form(&app, Some(&app.org.token), no_map).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // An Idempotency-Key is refused on multipart (the message's externalId does that job).
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.org.token)
        .header("idempotency-key", "k1")
        .multipart(form(input.clone(), small()))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(written(&app).await, rows);
    assert_eq!(files_under(dir.path()), Vec::<PathBuf>::new());

    // Multipart also carries plain operations (no files).
    let plain = Form::new()
        .text(
            "operations",
            json!({ "query": "{ viewer { user { email } } }" }).to_string(),
        )
        .text("map", "{}");
    let (status, body) = post_form(&app, Some(&app.org.token), plain).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({ "data": { "viewer": { "user": { "email": "owner@acme.test" } } } })
        )
    );
}
