//! `clearance init DIR`.

use std::path::Path;

use clearance_bundle::scaffold;

use crate::exit::Exit;

pub fn run(dir: &Path) -> anyhow::Result<Exit> {
    let written = scaffold(dir)?;
    for path in &written {
        println!("wrote {}", path.display());
    }
    let shown = dir.display();
    println!("\nnext: edit {shown}/clearance.yaml and {shown}/policies/, then");
    println!("  clearance check {shown} && clearance test {shown}");
    Ok(Exit::Ok)
}
