//! Handing signed checkpoints to their witness, outside the database: a
//! file (one line appended, then synced) or an `http(s)://` endpoint (the
//! line POSTed as JSON, taken on 2xx). Lines go in the order they were
//! signed; one that is not taken holds back the ones after it, and all are
//! retried at the next flush — the checkpoint is in the ledger meanwhile.

use std::{fs::OpenOptions, io::Write as _, path::PathBuf, time::Duration};

use clearance_engine::bundle::Witness;

/// How long one POST to a witness URL may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// Checkpoint lines on their way to their witnesses.
pub struct WitnessQueue {
    client: Option<reqwest::Client>,
    waiting: Vec<(Witness, String)>,
}

impl WitnessQueue {
    pub fn new() -> WitnessQueue {
        let client = reqwest::Client::builder()
            .timeout(POST_TIMEOUT)
            .build()
            .inspect_err(|error| {
                tracing::error!(%error, "no HTTP client: witness URLs are not reached");
            })
            .ok();
        WitnessQueue {
            client,
            waiting: Vec::new(),
        }
    }

    /// Queues `line` for `witness`, behind the lines already waiting.
    pub fn push(&mut self, witness: Witness, line: String) {
        self.waiting.push((witness, line));
    }

    /// Hands each waiting line to its witness, in order, up to the first
    /// that is not taken.
    pub async fn flush(&mut self) {
        let mut waiting = std::mem::take(&mut self.waiting).into_iter();
        for (witness, line) in waiting.by_ref() {
            let handed = match &witness {
                Witness::File(path) => append(PathBuf::from(path), line.clone()).await,
                Witness::Url(url) => self.post(url, &line).await,
            };
            if let Err(problem) = handed {
                tracing::error!(%problem, %witness, "checkpoint not with its witness yet; retrying");
                self.waiting.push((witness, line));
                break;
            }
        }
        self.waiting.extend(waiting);
    }

    async fn post(&self, url: &str, line: &str) -> Result<(), String> {
        let client = self.client.as_ref().ok_or("no HTTP client")?;
        let answer = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(line.to_owned())
            .send()
            .await
            .map_err(|e| format!("{e:#}"))?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(format!("the witness answered {}", answer.status()))
        }
    }
}

/// Appends `line` to the file and syncs it.
async fn append(path: PathBuf, line: String) -> Result<(), String> {
    let appended = tokio::task::spawn_blocking(move || {
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        file.write_all(format!("{line}\n").as_bytes())?;
        file.sync_data()
    })
    .await;
    match appended {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(error) => Err(format!("the append stopped: {error}")),
    }
}
