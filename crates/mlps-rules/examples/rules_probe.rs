//! Developer probe: `cargo run -p mlps-rules --example rules_probe -- <dir> [edition]`
//! prints validate findings and the reportgen table for a tree.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!("usage: rules_probe <dir> [edition]");
        std::process::exit(2);
    };
    let p = std::path::Path::new(dir);
    let t = std::time::Instant::now();
    let f = mlps_rules::validate_submission(p, args.get(2).map(|s| s.as_str()));
    let el = t.elapsed();
    for x in &f {
        println!("{:<7} {x}", x.severity.as_str());
    }
    println!("-- {} findings in {:?}", f.len(), el);
    let r = mlps_rules::reportgen::generate(p);
    print!("{}", r.render_table());
    for t in &r.table {
        println!("{} {:?} {:?}", t.path.display(), t.metrics, t.issues);
    }
}
