use super::*;

#[test]
fn phases_parse_by_name_and_number() {
    let by_name: Phase = serde_json::from_str("\"remediate\"").unwrap();
    let by_number: Phase = serde_json::from_str("3").unwrap();
    let by_quoted_number: Phase = serde_json::from_str("\"3\"").unwrap();
    assert_eq!(by_name, Phase::Remediate);
    assert_eq!(by_number, Phase::Remediate);
    assert_eq!(by_quoted_number, Phase::Remediate);
}

#[test]
fn unknown_phases_are_refused() {
    for bad in ["\"admin\"", "0", "5", "-1", "\"Shadow\""] {
        assert!(serde_json::from_str::<Phase>(bad).is_err(), "{bad} parsed");
    }
}

#[test]
fn demotion_steps_down_and_stops_at_shadow() {
    assert_eq!(Phase::Autonomous.demoted(), Phase::Remediate);
    assert_eq!(Phase::Assist.demoted(), Phase::Shadow);
    assert_eq!(Phase::Shadow.demoted(), Phase::Shadow);
}

#[test]
fn impact_is_ordered_read_to_critical() {
    assert!(Impact::ALL.windows(2).all(|w| w[0] < w[1]));
    assert!(Impact::High.needs_evidence() && Impact::Critical.needs_evidence());
    assert!(!Impact::Medium.needs_evidence());
    assert!(!Impact::Read.is_write() && Impact::Low.is_write());
}

#[test]
fn confidence_outside_zero_to_one_is_refused() {
    assert!(serde_json::from_str::<Confidence>("0.5").is_ok());
    assert!(serde_json::from_str::<Confidence>("1.5").is_err());
    assert!(serde_json::from_str::<Confidence>("-0.1").is_err());
    assert!(Confidence::new(f64::NAN).is_none());
}
