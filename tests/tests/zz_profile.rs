use agent_vault_tests::*;
#[test]
fn zz_profile() {
    let w = World::new();
    let r = w.tool("for i in 1 2 3 4; do for p in /tmp/exp/nostd/target/release/libnostd.so /tmp/exp/now.so /tmp/exp/lazy.so; do echo \"$p: $(LD_PRELOAD=$p /tmp/exp/spawnloop 2000)\"; done; done");
    println!("{}", r.all());
}
