//! Serving large tenants: every listing of a generated tenant walked to the
//! end. The default size keeps the suite quick; set `SIM_SCALE_PEOPLE`
//! (e.g. 1000000, with `--release`) for the benchmark-sized run.

use crate::sim_support;

use idrecon::sim::generate::generate;
use serde_json::Value;
use sim_support::*;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_tenant_listings_are_complete() {
    let people: usize = std::env::var("SIM_SCALE_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let started = Instant::now();
    let generated = generate(people, 99);
    let (azure, ifs, flow) = (
        generated.tenant.azure.len(),
        generated.tenant.ifs.len(),
        generated.tenant.flow.len(),
    );
    let sim = start(generated.tenant).await;
    eprintln!(
        "generated and started {people} people in {:?}",
        started.elapsed()
    );
    let base = sim.base_url();
    let client = client();

    let started = Instant::now();
    let token = graph_token(&client, &base).await;
    let pages = walk_graph(
        &client,
        &token,
        &format!("{base}/graph/v1.0/users?$select=id,userPrincipalName,mail,displayName,accountEnabled,employeeId,onPremisesSamAccountName,userType&$top=999"),
    )
    .await;
    let graph_users: usize = pages
        .iter()
        .map(|p| p["value"].as_array().unwrap().len())
        .sum();
    assert_eq!(graph_users, azure);
    eprintln!("graph: {azure} users in {:?}", started.elapsed());

    let started = Instant::now();
    let token = ifs_token(&client, &base).await;
    let mut skip = 0;
    let mut ifs_users = 0;
    loop {
        let page: Value = client
            .get(format!("{base}{IFS_USERS}?$select=Identity,Description,WebUser,Active&$orderby=Identity&$top=1000&$skip={skip}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let n = page["value"].as_array().unwrap().len();
        ifs_users += n;
        if n < 1000 {
            break;
        }
        skip += 1000;
    }
    assert_eq!(ifs_users, ifs);
    eprintln!("ifs: {ifs} users in {:?}", started.elapsed());

    let started = Instant::now();
    let mut url = format!("{base}/flow/users");
    let mut flow_users = 0;
    loop {
        let page: Value = flow_get(&client, &url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        flow_users += page["users"].as_array().unwrap().len();
        match page["nextCursor"].as_str() {
            Some(c) => url = format!("{base}/flow/users?cursor={c}"),
            None => break,
        }
    }
    assert_eq!(flow_users, flow);
    eprintln!("flow: {flow} users in {:?}", started.elapsed());
    sim.shutdown().await;
}
