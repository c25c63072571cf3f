#![allow(clippy::expect_used, clippy::unwrap_used)]

use super::*;

#[test]
fn every_builtin_parses() {
    for (name, _) in BUILTIN {
        let w = Workload::builtin(name.split('_').next().unwrap_or(name), None);
        let stem_ok = Workload::from_yaml_str(name, builtin::yaml(name).unwrap_or_default());
        assert!(stem_ok.is_ok(), "{name}: {:?}", stem_ok.err());
        let _ = w;
    }
}

#[test]
fn builtin_values_match_the_tables() {
    let w = Workload::builtin("unet3d", Some("b200")).expect("unet3d_b200");
    let p = w.params();
    assert_eq!(w.config_name, "unet3d_b200");
    assert_eq!(
        (p.num_files_train, p.batch_size, p.read_threads, p.epochs),
        (7200, 7, 4, 5)
    );
    assert_eq!(p.record_length, 146_600_628.0);
    assert_eq!(p.computation_time, Distribution::Constant { mean: 0.162 });
    assert_eq!(p.format, Format::Npz);
    assert!(p.file_shuffle_on());
    assert_eq!(
        (p.exclude_start_steps, p.seed, p.au_threshold),
        (1, 123, 0.9)
    );
    // The shipped (newer) retinanet_mi355.yaml has batch 36; dlio.md §2.1 lists an older revision (32).
    let r = Workload::builtin("retinanet", Some("mi355")).expect("retinanet_mi355");
    assert_eq!(
        (
            r.params().batch_size,
            r.params().epochs,
            r.params().au_threshold
        ),
        (36, 8, 0.85)
    );
    let f = Workload::builtin("flux", Some("b200")).expect("flux_b200");
    assert_eq!(f.params().record_size(), 2_164_832.0);
    let rn = Workload::builtin("resnet50", Some("h100")).expect("resnet50_h100");
    assert_eq!(rn.params().record_length, 114_660.07);
    assert_eq!(rn.params().framework, "tensorflow");
    for (m, a) in [
        ("retinanet", "a100"),
        ("flux", "h100"),
        ("dlrm", "a100"),
        ("cosmoflow", "h100"),
        ("dlrm", "mi355"),
        ("unet3d", "h100"),
    ] {
        assert!(Workload::builtin(m, Some(a)).is_ok(), "{m} {a}");
    }
    assert!(matches!(
        Workload::builtin("unet3d", Some("mi355")),
        Err(Error::UnknownWorkload { .. })
    ));
    assert!(Workload::builtin("llama3-8b", None).is_ok());
}

#[test]
fn overrides_are_typed_and_unknown_keys_reported() {
    let mut w = Workload::builtin("unet3d", Some("b200")).expect("builtin");
    let r = w
        .apply_overrides(&[
            ("dataset.num_files_train".into(), "75001".into()),
            ("++workload.reader.read_threads".into(), "8".into()),
            ("dataset.bogus_key".into(), "3".into()),
            ("dlio.semantics".into(), "v2".into()),
        ])
        .expect("applies");
    assert_eq!(r.unknown, vec!["dataset.bogus_key".to_string()]);
    assert_eq!(w.params().num_files_train, 75_001);
    assert_eq!(w.params().read_threads, 8);
    assert_eq!(w.params().semantics, Semantics::V2);
    assert_eq!(w.unknown_keys(), ["dataset.bogus_key".to_string()]);
    let e = w
        .apply_overrides(&[("reader.batch_size".into(), "seven".into())])
        .expect_err("typed");
    assert!(e.to_string().contains("reader.batch_size"), "{e}");
    // A failed override leaves the workload unchanged.
    assert_eq!(w.params().batch_size, 7);
}

#[test]
fn yaml_with_workload_wrapper_and_ignored_keys() {
    let text = "workload:\n  model:\n    name: unet3d\n    model_size: 5\n  dataset:\n    num_files_train: 10\n    format: npz\n  reader:\n    batch_size: 2\n  train:\n    computation_time: {mean: 0.1, stdev: 0.01}\n";
    let w = Workload::from_yaml_str("x", text).expect("parses");
    assert_eq!(w.params().num_files_train, 10);
    assert_eq!(
        w.params().computation_time,
        Distribution::Normal {
            mean: 0.1,
            stdev: 0.01
        }
    );
    assert_eq!(w.ignored_tree_keys(), vec!["model.model_size".to_string()]);
    assert!(Workload::from_yaml_str("x", "- a\n- b\n").is_err());
}
