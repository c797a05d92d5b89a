//! `report/validation.md` and the Val. section of Table 5's report, from the cells' summaries.

use super::{SimError, Summary, LEVEL};
use std::fmt::Write as _;

/// The paper's Table 5 "Val." column: label, then S1..S5.
pub const PAPER_VAL: [(&str, [f64; 5]); 10] = [
    ("Call", [1.01, 1.77, 1.31, 1.81, 1.29]),
    ("Thread", [1.63, 0.99, 0.98, 1.00, 0.93]),
    ("Thread&Call", [2.15, 2.80, 1.44, 2.65, 1.45]),
    ("Thread-Call", [2.36, 2.57, 1.32, 3.07, 1.20]),
    ("Call-Thread", [2.11, 3.00, 1.62, 2.52, 1.33]),
    ("Call*5", [1.00, 2.30, 1.43, 2.87, 1.30]),
    ("Thread*5", [1.83, 1.28, 1.06, 1.03, 1.16]),
    ("Thread&Call*5", [2.35, 2.92, 1.29, 2.83, 2.05]),
    ("Thread-Call*5", [1.51, 2.52, 2.21, 3.18, 1.44]),
    ("Call-Thread*5", [2.19, 2.33, 2.40, 2.16, 1.33]),
];

/// Target of the issue: validated / simulated >= this where the simulated ratio exceeds 1.1.
pub const VAL_OVER_SIM_TARGET: f64 = 0.85;

fn grid_table(
    out: &mut String,
    title: &str,
    summaries: &[Summary],
    datasets: &[String],
    cell: &dyn Fn(&Summary, usize) -> String,
) {
    let _ = write!(out, "\n## {title}\n\n| configuration |");
    for d in datasets {
        let _ = write!(out, " {} |", d.to_string().to_uppercase());
    }
    let _ = write!(out, "\n|---|");
    for _ in datasets {
        let _ = write!(out, "---|");
    }
    let _ = writeln!(out);
    for (label, _) in PAPER_VAL {
        if !summaries.iter().any(|s| s.label == label) {
            continue;
        }
        let _ = write!(out, "| {label} |");
        for d in datasets {
            // The paper's figures exist for its five datasets only (any other study: none).
            let di = sfr2l_files::study::built_in_names().position(|p| p == d).unwrap_or(usize::MAX);
            let text = summaries
                .iter()
                .find(|s| s.label == label && s.profile == *d)
                .map(|s| cell(s, di))
                .unwrap_or_else(|| "-".into());
            let _ = write!(out, " {text} |");
        }
        let _ = writeln!(out);
    }
}

fn paper_val(label: &str, di: usize) -> f64 {
    PAPER_VAL.iter().find(|(l, _)| *l == label).and_then(|(_, v)| v.get(di).copied()).unwrap_or(f64::NAN)
}

/// The Val. table in Table 5's layout: ratio, interval and the paper's Val.
fn val_grid(out: &mut String, summaries: &[Summary], datasets: &[String]) {
    let title = format!(
        "Val.: agents' reward over random's on the real lab, {:.0}% interval (paper's Val. in brackets)",
        LEVEL * 100.0
    );
    grid_table(out, &title, summaries, datasets, &|s, di| {
        format!(
            "{:.2} [{:.2}, {:.2}] ({:.2})",
            s.validated.ratio,
            s.validated.lo,
            s.validated.hi,
            paper_val(&s.label, di)
        )
    });
}

/// `report/validation.md`.
pub fn table_md(
    summaries: &[Summary],
    datasets: &[String],
    test_mse: &[(String, f64)],
    command: &str,
    commit: &str,
    seconds: f64,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Validation on the real lab: the paper's Val. column\n");
    let samples = summaries.first().map_or(0, |s| s.samples);
    let _ = writeln!(
        out,
        "Made by `{command}` at commit `{commit}` in {:.1} minutes on this machine. Per cell: {samples} states drawn \
         from the best epoch's decisions (seed-1 agents), each replayed on the real lab (Envoy 1.40 + httpbin, the \
         dataset's topology) with its rule applied; the agents' load (decided by the exported ONNX agents, the chain \
         the filter runs) and a uniform random load from the same grids run back to back, order alternating. \
         Val. = sum of the agents' rewards / sum of random's (the paper's metric); the interval is a paired \
         bootstrap over the states. Per-cell samples: `policies/sN/agents/<configuration>/seed-1/validation.csv`.",
        seconds / 60.0
    );
    val_grid(&mut out, summaries, datasets);
    grid_table(
        &mut out,
        &format!(
            "Val. / simulated on the same states and loads (target >= {VAL_OVER_SIM_TARGET} where simulated > 1.1; \
             `miss` marks a cell below it)"
        ),
        summaries,
        datasets,
        &|s, _| {
            let miss = s.simulated_on_samples.ratio > 1.1 && s.val_over_sim < VAL_OVER_SIM_TARGET;
            format!(
                "{:.2} (sim {:.2}){}",
                s.val_over_sim,
                s.simulated_on_samples.ratio,
                if miss { " miss" } else { "" }
            )
        },
    );
    if summaries.iter().any(|s| s.inline.is_some()) {
        grid_table(
            &mut out,
            "Inside Envoy: Val. with the decision taken and the load sent by the filter (load-test mode); same \
             decisions / samples; whether its interval overlaps the outside replay's",
            summaries,
            datasets,
            &|s, _| match (&s.inline, s.inline_same_decision, s.inline_agrees) {
                (Some(r), Some(same), Some(ok)) => format!(
                    "{:.2} [{:.2}, {:.2}], {same}/{}, {}",
                    r.ratio,
                    r.lo,
                    r.hi,
                    s.samples,
                    if ok { "agrees" } else { "differs" }
                ),
                _ => "-".into(),
            },
        );
    }
    let _ = write!(
        out,
        "\n## Sim-to-real: the simulator's error on the validation runs beside its test MSE\n\n\
         MSE standardised by the dataset's sd of each output, mean over QPS and 503 rate (Table 4's scale), over \
         every agent and random run of the dataset's cells.\n\n\
         | dataset | runs | MSE on the validation runs (QPS / 503 rate) | test MSE (Table 4) |\n|---|---|---|---|\n"
    );
    for d in datasets {
        let of: Vec<&Summary> = summaries.iter().filter(|s| s.profile == *d).collect();
        let runs: usize = of.iter().map(|s| s.sim_error.runs).sum();
        if runs == 0 {
            continue;
        }
        let w = |f: &dyn Fn(&SimError) -> f64| {
            of.iter().map(|s| f(&s.sim_error) * s.sim_error.runs as f64).sum::<f64>() / runs as f64
        };
        let test = test_mse.iter().find(|(id, _)| *id == *d).map_or(f64::NAN, |(_, m)| *m);
        let _ = writeln!(
            out,
            "| {} | {runs} | {:.3} ({:.3} / {:.3}) | {test:.3} |",
            d.to_string().to_uppercase(),
            w(&|e| e.mse),
            w(&|e| e.mse_qps),
            w(&|e| e.mse_503)
        );
    }
    out
}

pub(super) const VAL_BEGIN: &str = "<!-- validation: sfr2l validate --table -->";
const VAL_END: &str = "<!-- /validation -->";

/// The Val. section that `validate --table` puts into Table 5's report.
pub fn val_section(summaries: &[Summary], datasets: &[String]) -> String {
    let mut s = String::new();
    val_grid(&mut s, summaries, datasets);
    let _ = writeln!(s, "\nDetails (Val./simulated, inside Envoy, sim-to-real error): `validation.md`.");
    s
}

/// Table 5's report with `section` between the validation markers (replacing an earlier one),
/// placed after the Sim. table, before any history.
pub fn with_val_section(md: &str, section: &str) -> String {
    let block = format!("{VAL_BEGIN}\n{}\n{VAL_END}\n", section.trim());
    if let (Some(a), Some(b)) = (md.find(VAL_BEGIN), md.find(VAL_END)) {
        if a < b {
            let rest = &md[b + VAL_END.len()..];
            return format!("{}{block}{}", &md[..a], rest.strip_prefix('\n').unwrap_or(rest));
        }
    }
    // After the first table of the report (the Sim. table).
    let mut at = None;
    let mut in_table = false;
    let mut pos = 0;
    for line in md.split_inclusive('\n') {
        if line.starts_with('|') {
            in_table = true;
        } else if in_table {
            at = Some(pos);
            break;
        }
        pos += line.len();
    }
    match at {
        Some(i) => format!("{}\n{block}{}", &md[..i], &md[i..]),
        None => format!("{}\n\n{block}", md.trim_end()),
    }
}
