//! Protocol revisions this server speaks, and version negotiation for `initialize`; pure.

use std::fmt;

/// A protocol revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// Accepted inside `initialize` for old clients only.
    V2024_11_05,
    /// Streamable HTTP; the only revision with JSON-RPC batches.
    V2025_03_26,
    /// Structured output, elicitation, `MCP-Protocol-Version` header.
    V2025_06_18,
    /// The last initialize/session revision.
    V2025_11_25,
    /// Stateless: per-request `_meta`, `server/discover`, no sessions.
    V2026_07_28,
}

/// Every revision we publish, newest first (`server/discover` and `-32022` data).
pub const SUPPORTED: [Version; 4] = [
    Version::V2026_07_28,
    Version::V2025_11_25,
    Version::V2025_06_18,
    Version::V2025_03_26,
];

/// The counter-offer for an `initialize` naming a revision we do not speak.
pub const LATEST_LEGACY: Version = Version::V2025_11_25;

impl Version {
    /// Parses a revision string.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "2024-11-05" => Self::V2024_11_05,
            "2025-03-26" => Self::V2025_03_26,
            "2025-06-18" => Self::V2025_06_18,
            "2025-11-25" => Self::V2025_11_25,
            "2026-07-28" => Self::V2026_07_28,
            _ => return None,
        })
    }

    /// The revision string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2024_11_05 => "2024-11-05",
            Self::V2025_03_26 => "2025-03-26",
            Self::V2025_06_18 => "2025-06-18",
            Self::V2025_11_25 => "2025-11-25",
            Self::V2026_07_28 => "2026-07-28",
        }
    }

    /// True for the stateless revision.
    pub fn is_modern(self) -> bool {
        self == Self::V2026_07_28
    }

    /// `structuredContent` may be any JSON value (2026-07-28); earlier, objects only.
    pub fn allows_non_object_structured_content(self) -> bool {
        self.is_modern()
    }

    /// `initialize` answers: echo a legacy revision we speak, else counter-offer the latest.
    pub fn negotiate(requested: &str) -> Self {
        match Self::parse(requested) {
            Some(v) if !v.is_modern() => v,
            _ => LATEST_LEGACY,
        }
    }

    /// The supported list as strings, newest first.
    pub fn supported_strings() -> Vec<&'static str> {
        SUPPORTED.iter().map(|v| v.as_str()).collect()
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_counter_offers_latest_legacy() {
        assert_eq!(Version::negotiate("2025-06-18"), Version::V2025_06_18);
        assert_eq!(Version::negotiate("2024-11-05"), Version::V2024_11_05);
        assert_eq!(Version::negotiate("2099-01-01"), Version::V2025_11_25);
        // The stateless revision has no initialize; a client asking for it gets the handshake revision.
        assert_eq!(Version::negotiate("2026-07-28"), Version::V2025_11_25);
    }
}
