//! Who may use a served host: bearer tokens, each allowed some agents or all,
//! and as many runs at once as the server allows a token. The tokens file
//! holds only BLAKE3 hashes of the tokens, so it holds no secret, and a
//! presented token is compared with every entry in constant time. `/health`
//! stays open; every other path needs a token.

use crate::files::{MAX_SETTINGS_FILE, read_text_bounded};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Who may call the API.
pub enum Access {
    /// Anyone who can reach the address.
    Open,
    Tokens(Tokens),
}

/// The agents one token may run and list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowed {
    All,
    Agents(Vec<String>),
}

impl Allowed {
    pub fn may_run(&self, agent: &str) -> bool {
        match self {
            Allowed::All => true,
            Allowed::Agents(agents) => agents.iter().any(|allowed| allowed == agent),
        }
    }
}

/// Who a request comes from, as far as the server cares: what it may run,
/// and the runs its token has in flight.
#[derive(Clone, Debug)]
pub struct Caller {
    pub allowed: Allowed,
    /// The token's share of runs, when the server bounds runs per token.
    runs: Option<Arc<Semaphore>>,
}

impl Caller {
    /// A caller of an open server: anything, without bound.
    pub fn anyone() -> Self {
        Caller {
            allowed: Allowed::All,
            runs: None,
        }
    }

    /// One of the token's runs, or `None` if it has all it may have in flight.
    pub fn start_run(&self) -> Option<RunSlot> {
        match &self.runs {
            None => Some(RunSlot { _permit: None }),
            Some(runs) => runs.clone().try_acquire_owned().ok().map(|permit| RunSlot {
                _permit: Some(permit),
            }),
        }
    }
}

/// A run counted against its token until it ends.
pub struct RunSlot {
    _permit: Option<OwnedSemaphorePermit>,
}

/// The tokens a host accepts, as hashes.
pub struct Tokens(Vec<(blake3::Hash, Caller)>);

/// A tokens file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("{}: cannot read: {source}", .path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason} (a line is `HASH AGENTS`: the token's BLAKE3 hash in hex, then `*` or agent names separated by commas; `glassbox token` makes one)", .path.display())]
    Invalid {
        path: std::path::PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{}: no tokens; every request would be refused", .0.display())]
    Empty(std::path::PathBuf),
}

impl Tokens {
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let text =
            read_text_bounded(path, MAX_SETTINGS_FILE).map_err(|source| TokensError::Read {
                path: path.into(),
                source,
            })?;
        let mut tokens = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let invalid = |reason: &str| TokensError::Invalid {
                path: path.into(),
                line: index + 1,
                reason: reason.into(),
            };
            let (hash, agents) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| invalid("no agents after the hash"))?;
            let hash = blake3::Hash::from_hex(hash)
                .map_err(|_| invalid("the hash is not 64 hexadecimal digits"))?;
            let allowed = match agents.trim() {
                "*" => Allowed::All,
                agents => Allowed::Agents(
                    agents
                        .split(',')
                        .map(|agent| agent.trim().to_owned())
                        .filter(|agent| !agent.is_empty())
                        .collect(),
                ),
            };
            tokens.push((
                hash,
                Caller {
                    allowed,
                    runs: None,
                },
            ));
        }
        if tokens.is_empty() {
            return Err(TokensError::Empty(path.into()));
        }
        Ok(Tokens(tokens))
    }

    /// The same tokens, each allowed at most `runs` runs in flight at once.
    pub fn with_runs_per_token(mut self, runs: u32) -> Self {
        for (_, caller) in &mut self.0 {
            caller.runs = Some(Arc::new(Semaphore::new(runs as usize)));
        }
        self
    }

    /// Who holds `token`, if it is one of these. Every entry is compared,
    /// each in constant time, so timing tells nothing about the tokens.
    pub fn check(&self, token: &str) -> Option<&Caller> {
        let presented = blake3::hash(token.as_bytes());
        let mut found = None;
        for (hash, caller) in &self.0 {
            // `blake3::Hash` compares in constant time.
            if *hash == presented && found.is_none() {
                found = Some(caller);
            }
        }
        found
    }
}

/// A new random token, and its hash for the tokens file.
pub fn new_token() -> std::io::Result<(String, String)> {
    let mut secret = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut secret)?;
    let token = format!(
        "gbx_{}",
        secret
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let hash = blake3::hash(token.as_bytes()).to_hex().to_string();
    Ok((token, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_kept_as_hashes_and_checked_with_their_agents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let (token, hash) = new_token().unwrap();
        let (other, other_hash) = new_token().unwrap();
        std::fs::write(
            &path,
            format!("# who may call\n{hash} react-agent, planner\n\n{other_hash} *\n"),
        )
        .unwrap();
        let tokens = Tokens::load(&path).unwrap().with_runs_per_token(1);
        let caller = tokens.check(&token).unwrap();
        assert!(caller.allowed.may_run("planner") && !caller.allowed.may_run("worker"));
        assert_eq!(tokens.check(&other).unwrap().allowed, Allowed::All);
        assert!(tokens.check("gbx_guess").is_none());

        let run = caller.start_run().expect("the token's one run");
        assert!(caller.start_run().is_none(), "one run per token");
        assert!(
            tokens.check(&other).unwrap().start_run().is_some(),
            "counted per token"
        );
        drop(run);
        assert!(caller.start_run().is_some(), "given back when the run ends");
        assert!(!std::fs::read_to_string(&path).unwrap().contains(&token));

        std::fs::write(&path, "xyz *\n").unwrap();
        assert!(
            Tokens::load(&path)
                .err()
                .unwrap()
                .to_string()
                .contains(":1: the hash is not 64 hexadecimal digits")
        );
        std::fs::write(&path, "# nothing\n").unwrap();
        assert!(matches!(Tokens::load(&path), Err(TokensError::Empty(_))));
    }
}
