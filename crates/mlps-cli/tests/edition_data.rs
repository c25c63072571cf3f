//! The grammar's closed/open choices must equal the edition table they were taken from
//! (`fixtures/editions.yaml`, an unmodified upstream copy; see fixtures/SOURCES.md).

use std::collections::BTreeSet;

use mlps_cli::edition;
use serde_json::Value;

fn editions() -> Value {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/editions.yaml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}"))
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn constants_match_edition_table() {
    let y = editions();
    assert_eq!(y["current_edition"], edition::RULES_EDITION);
    for division in ["closed", "open"] {
        let w = &y["editions"][edition::RULES_EDITION]["workloads"][division];
        let models: BTreeSet<String> = edition::TRAINING_MODELS_EDITION
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(keys(&w["training"]), models, "{division} training models");
        let ckpt: BTreeSet<String> = edition::CHECKPOINT_MODELS
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            keys(&w["checkpointing"]),
            ckpt,
            "{division} checkpointing models"
        );
        for (model, accs) in w["training"].as_object().into_iter().flatten() {
            let accs: Vec<&str> = accs
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(accs, edition::ACCELERATORS_EDITION, "{model}");
        }
        assert!(keys(&w["kv_cache"]).contains(edition::KVCACHE_MODEL_CLOSED));
    }
}
