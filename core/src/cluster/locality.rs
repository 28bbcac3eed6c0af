//! Where a node runs and where a viewer is: a region and a zone, each a short name with the
//! syntax of a Kubernetes label value (`eu-west`, `eu-west-1a`), both optional.
//!
//! A node is told its own (`--region`, `--zone`) and registers them in its
//! [`crate::cluster::routing::NodeInfo`]; a viewer's come from a hint on its WHEP request
//! (`api::locality_hint`). Placement ranks the edges it could send a viewer to by
//! [`tier`]: one in the viewer's region and zone first, then its region, then any
//! ([`crate::cluster::decide::admission`]); the relay tree prefers an upstream in the pulling
//! edge's own region ([`crate::cluster::placement::choose_upstream`]). Pure and `std` only.

use crate::cluster::decide::admission::Tier;

/// Longest region or zone name: a DNS label's limit, and longer than any cloud's.
pub const MAX_LEN: usize = 63;

/// A region and a zone, either unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locality {
    /// The region (`eu-west`); `None`: not said.
    pub region: Option<String>,
    /// The zone within it (`eu-west-1a`, or `a`); `None`: not said.
    pub zone: Option<String>,
}

impl Locality {
    /// Checks a region and a zone as given (a flag, a query parameter, a header); an empty
    /// string means "not said". The error names which of the two is at fault.
    pub fn parse(region: Option<&str>, zone: Option<&str>) -> Result<Self, String> {
        Ok(Self {
            region: label(region).map_err(|m| format!("region: {m}"))?,
            zone: label(zone).map_err(|m| format!("zone: {m}"))?,
        })
    }

    /// Whether neither is known.
    pub fn is_empty(&self) -> bool {
        self.region.is_none() && self.zone.is_none()
    }
}

/// A region or zone name: the syntax of a Kubernetes label value (the chart copies them from
/// the `topology.kubernetes.io/*` labels), 1 to 63 ASCII letters, digits, `-`, `_` or `.`,
/// starting and ending with a letter or digit; compared exactly. `None` or empty: none.
pub fn label(value: Option<&str>) -> Result<Option<String>, String> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let inner = |b: u8| b.is_ascii_alphanumeric() || b"-_.".contains(&b);
    let bytes = value.as_bytes();
    let ok = value.len() <= MAX_LEN
        && bytes.iter().all(|&b| inner(b))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric);
    if ok {
        Ok(Some(value.to_owned()))
    } else {
        // Shown escaped and cut short: the value may be anything a client sent.
        let shown: String = value.chars().take(MAX_LEN + 1).collect();
        Err(format!(
            "{shown:?} is not 1 to {MAX_LEN} letters, digits, '-', '_' or '.' starting and \
             ending with a letter or digit"
        ))
    }
}

/// How near a node in `region`/`zone` is to a viewer whose hint is `hint`: [`Tier::Best`] when
/// it matches everything the hint says (so every node, without a hint), [`Tier::Region`] when
/// it is in the hinted region but another zone, else [`Tier::Any`]. A zone is compared only
/// within the hinted region: zone names need not be unique across regions.
pub fn tier(hint: &Locality, region: Option<&str>, zone: Option<&str>) -> Tier {
    let region_ok = hint.region.is_none() || hint.region.as_deref() == region;
    let zone_ok = hint.zone.is_none() || hint.zone.as_deref() == zone;
    match (region_ok, zone_ok) {
        (true, true) => Tier::Best,
        (true, false) if hint.region.is_some() => Tier::Region,
        _ => Tier::Any,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels_and_empty_is_none() {
        for good in [
            "eu-west",
            "a",
            "us-central1-b",
            "EU_West.2",
            &"x".repeat(63),
        ] {
            assert_eq!(label(Some(good)).unwrap().as_deref(), Some(good));
        }
        assert_eq!(label(Some("")).unwrap(), None);
        assert_eq!(label(None).unwrap(), None);
        let long = "x".repeat(64);
        for bad in [
            "-eu", "eu-", ".eu", "eu_", "eu west", "é", &long, "a/b", "%41", "\0", "a+b",
        ] {
            assert!(label(Some(bad)).is_err(), "{bad:?}");
        }
        let e = Locality::parse(Some("eu"), Some("a b")).unwrap_err();
        assert!(e.starts_with("zone:"), "{e}");
    }

    #[test]
    fn tiers_rank_zone_then_region_then_any() {
        let hint = Locality::parse(Some("eu"), Some("a")).unwrap();
        assert_eq!(tier(&hint, Some("eu"), Some("a")), Tier::Best);
        assert_eq!(tier(&hint, Some("eu"), Some("b")), Tier::Region);
        assert_eq!(tier(&hint, Some("eu"), None), Tier::Region);
        assert_eq!(tier(&hint, Some("us"), Some("a")), Tier::Any);
        assert_eq!(tier(&hint, None, None), Tier::Any);
        // A region alone: every zone of it is best.
        let region = Locality::parse(Some("eu"), None).unwrap();
        assert_eq!(tier(&region, Some("eu"), Some("b")), Tier::Best);
        assert_eq!(tier(&region, Some("us"), None), Tier::Any);
        // A zone alone: that zone, else anywhere.
        let zone = Locality::parse(None, Some("a")).unwrap();
        assert_eq!(tier(&zone, Some("eu"), Some("a")), Tier::Best);
        assert_eq!(tier(&zone, Some("eu"), Some("b")), Tier::Any);
        // No hint: every node is best, as before regions.
        let none = Locality::default();
        assert_eq!(tier(&none, Some("us"), Some("b")), Tier::Best);
        assert_eq!(tier(&none, None, None), Tier::Best);
    }
}
