//! The upstream workload YAMLs embedded in the binary (sources: `workloads/NOTICE.md`).

/// `(config name, YAML text)` of every embedded workload file.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "cosmoflow_a100",
        include_str!("../../workloads/cosmoflow_a100.yaml"),
    ),
    (
        "cosmoflow_datagen",
        include_str!("../../workloads/cosmoflow_datagen.yaml"),
    ),
    (
        "cosmoflow_h100",
        include_str!("../../workloads/cosmoflow_h100.yaml"),
    ),
    ("dlrm_a100", include_str!("../../workloads/dlrm_a100.yaml")),
    ("dlrm_b200", include_str!("../../workloads/dlrm_b200.yaml")),
    (
        "dlrm_datagen",
        include_str!("../../workloads/dlrm_datagen.yaml"),
    ),
    ("dlrm_h100", include_str!("../../workloads/dlrm_h100.yaml")),
    (
        "dlrm_mi355",
        include_str!("../../workloads/dlrm_mi355.yaml"),
    ),
    ("flux_a100", include_str!("../../workloads/flux_a100.yaml")),
    ("flux_b200", include_str!("../../workloads/flux_b200.yaml")),
    (
        "flux_datagen",
        include_str!("../../workloads/flux_datagen.yaml"),
    ),
    ("flux_h100", include_str!("../../workloads/flux_h100.yaml")),
    (
        "flux_mi355",
        include_str!("../../workloads/flux_mi355.yaml"),
    ),
    ("llama3_1t", include_str!("../../workloads/llama3_1t.yaml")),
    (
        "llama3_405b",
        include_str!("../../workloads/llama3_405b.yaml"),
    ),
    (
        "llama3_70b",
        include_str!("../../workloads/llama3_70b.yaml"),
    ),
    ("llama3_8b", include_str!("../../workloads/llama3_8b.yaml")),
    (
        "resnet50_a100",
        include_str!("../../workloads/resnet50_a100.yaml"),
    ),
    (
        "resnet50_datagen",
        include_str!("../../workloads/resnet50_datagen.yaml"),
    ),
    (
        "resnet50_h100",
        include_str!("../../workloads/resnet50_h100.yaml"),
    ),
    (
        "retinanet_a100",
        include_str!("../../workloads/retinanet_a100.yaml"),
    ),
    (
        "retinanet_b200",
        include_str!("../../workloads/retinanet_b200.yaml"),
    ),
    (
        "retinanet_datagen",
        include_str!("../../workloads/retinanet_datagen.yaml"),
    ),
    (
        "retinanet_h100",
        include_str!("../../workloads/retinanet_h100.yaml"),
    ),
    (
        "retinanet_mi355",
        include_str!("../../workloads/retinanet_mi355.yaml"),
    ),
    (
        "unet3d_a100",
        include_str!("../../workloads/unet3d_a100.yaml"),
    ),
    (
        "unet3d_b200",
        include_str!("../../workloads/unet3d_b200.yaml"),
    ),
    (
        "unet3d_datagen",
        include_str!("../../workloads/unet3d_datagen.yaml"),
    ),
    (
        "unet3d_h100",
        include_str!("../../workloads/unet3d_h100.yaml"),
    ),
];

/// The YAML text of a built-in config name.
pub fn yaml(stem: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|(n, _)| *n == stem).map(|(_, t)| *t)
}

/// Names of the built-in workload files.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}
