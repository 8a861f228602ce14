//! `bbbctl bake [-s STACK] [--roll]`: a server image with BigBlueButton installed, made by a
//! builder instance from the deployment's own launch template (the engine is `crate::bake`),
//! recorded as the servers' image (root parameter BBBServerImageId, a stack update: new
//! servers start from it), then with `--roll` the running servers replaced by the drain
//! engine's roll (new ones first, old ones drained: no meeting is cut).

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::connect;
use super::stacks::Deployment;
use crate::aws::Aws;
use crate::bake::{self, Baked, Options, P_SERVER_IMAGE};
use crate::cli::{BakeArgs, DrainOptions};
use crate::drain::Fleet;
use crate::error::usage;
use crate::settings::Global;
use crate::ui::{Printer, format_duration};

/// How often the builder's log, its state and the image are read.
const POLL: Duration = Duration::from_secs(5);

/// The builder may take at least this long (a bare install takes 15-25 minutes).
const MIN_TIMEOUT: u64 = 60;

pub async fn run(g: &Global, p: &Printer, args: &BakeArgs, stack: &str) -> Result<()> {
    if args.timeout < MIN_TIMEOUT {
        return Err(usage(format!(
            "--timeout {} is too short for a builder to install BigBlueButton (15-25 minutes): give at least {MIN_TIMEOUT} s. Nothing was changed",
            args.timeout
        )));
    }
    let aws = connect(g, p, stack).await?;
    let d = Deployment::find(&aws, stack).await?;
    let baked = bake_and_record(&aws, p, &d, args.timeout, args.keep_builder_on_failure).await?;
    let mut rolled = Vec::new();
    if args.roll {
        rolled = roll(&aws, g, p, &d, &args.drain, args.roll_timeout).await?;
    }
    let took = format_duration(baked.took.as_millis() as i64);
    let next = if args.roll {
        format!(
            "{} running server(s) replaced by servers from it.",
            rolled.len()
        )
    } else {
        format!(
            "New servers start from it. The running ones keep theirs: `bbbctl roll -s {stack}` replaces them (new ones first, no meeting is cut)."
        )
    };
    p.result(
        format!(
            "Image {} ({}) baked in {took} and recorded as the servers' image ({P_SERVER_IMAGE}); snapshots {}. {next}",
            baked.image,
            baked.name,
            baked.snapshots.join(", ")
        ),
        &json!({
            "stack": stack,
            "image": baked.image,
            "name": baked.name,
            "snapshots": baked.snapshots,
            "builder": baked.builder,
            "pins": baked.pins,
            "seconds": baked.took.as_secs(),
            "rolled": rolled,
        }),
    );
    Ok(())
}

/// Bakes and records the image in the deployment (shared with `setup --bake`).
pub(crate) async fn bake_and_record(
    aws: &Aws,
    p: &Printer,
    d: &Deployment,
    timeout: u64,
    keep_builder_on_failure: bool,
) -> Result<Baked> {
    let plan = bake::plan(aws, d).await?;
    let options = Options {
        timeout: Duration::from_secs(timeout),
        keep_builder_on_failure,
        poll: POLL,
    };
    let baked = bake::bake(aws, p, &plan, &options).await?;
    p.info(format!(
        "Recording image {} as the servers' image of {} ({P_SERVER_IMAGE})",
        baked.image, d.name
    ));
    crate::deployment::update_parameter(
        aws,
        p,
        &d.stack,
        &d.name,
        (P_SERVER_IMAGE, &baked.image),
        &format!(
            "the servers keep their image; image {} stays (tagged for the deployment: `bbbctl destroy` removes it)",
            baked.image
        ),
    )
    .await?;
    // The warm pool's prepared servers are of the bare image (or an older bake): replaced,
    // so that a scale-out starts servers from the new image.
    if let Some(group) = d.outputs.get(crate::deployment::out::SERVER_GROUP) {
        crate::drain::refresh_warm_pool(aws, p, group, false).await?;
    }
    Ok(baked)
}

/// The running servers onto the new launch template version: the drain engine's roll.
async fn roll(
    aws: &Aws,
    g: &Global,
    p: &Printer,
    d: &Deployment,
    drain: &DrainOptions,
    timeout: u64,
) -> Result<Vec<String>> {
    let fleet = Fleet::new(aws, d, drain.scalelite_url.as_deref()).await?;
    let limits = super::drain::limits(&fleet, drain, g.yes);
    let (replaced, _) = fleet
        .roll(aws, p, false, 1, limits, Duration::from_secs(timeout))
        .await?;
    Ok(replaced)
}
