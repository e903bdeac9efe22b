//! Handing signed checkpoints to their witness, outside the database: a
//! file (one line appended, then synced) or an `http(s)://` endpoint (the
//! line POSTed as JSON, taken on 2xx). Lines go in the order they were
//! signed; one that is not taken holds back the ones after it, and all are
//! retried at the next flush — the checkpoint is in the ledger meanwhile.
//! A witness down for long keeps only the newest [`MOST_WAITING`] lines
//! waiting: a checkpoint pins every record before its own, so the newest
//! one covers what the ones dropped would have.

use std::{fs::OpenOptions, io::Write as _, path::PathBuf, time::Duration};

use clearance_engine::bundle::Witness;

/// How long one POST to a witness URL may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// The most lines waiting for their witnesses: a witness URL down for a
/// week with `interval: 1m` would otherwise have the gateway hold ~10,000
/// of them, and any number for a longer outage.
const MOST_WAITING: usize = 1_000;

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

    /// Queues `line` for `witness`, behind the lines already waiting; past
    /// [`MOST_WAITING`], the oldest waiting line is dropped.
    pub fn push(&mut self, witness: Witness, line: String) {
        if self.waiting.len() >= MOST_WAITING {
            let (dropped_for, _) = self.waiting.remove(0);
            tracing::warn!(
                witness = %dropped_for,
                "a witness has taken no checkpoint for {MOST_WAITING} checkpoints: the oldest waiting is dropped (the newest pins every record before it)"
            );
        }
        self.waiting.push((witness, line));
    }

    /// How many lines wait for their witnesses.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_witness_that_takes_nothing_keeps_only_the_newest_lines_waiting() {
        let dir = tempfile::tempdir().unwrap();
        // A file in a directory that does not exist: every append fails.
        let unreachable =
            Witness::File(dir.path().join("gone/witness.jsonl").display().to_string());
        let mut queue = WitnessQueue::new();
        for seq in 1..=MOST_WAITING + 5 {
            queue.push(unreachable.clone(), format!("line {seq}"));
            queue.flush().await;
        }
        assert_eq!(queue.waiting.len(), MOST_WAITING);
        assert_eq!(queue.waiting[0].1, "line 6", "the oldest were dropped");
        assert_eq!(
            queue.waiting.last().map(|(_, line)| line.as_str()),
            Some(format!("line {}", MOST_WAITING + 5).as_str())
        );

        // Once the witness takes lines, it gets the kept ones, in order.
        std::fs::create_dir(dir.path().join("gone")).unwrap();
        queue.flush().await;
        assert!(queue.waiting.is_empty());
        let taken = std::fs::read_to_string(dir.path().join("gone/witness.jsonl")).unwrap();
        assert_eq!(taken.lines().count(), MOST_WAITING);
        assert_eq!(taken.lines().next(), Some("line 6"));
    }
}
