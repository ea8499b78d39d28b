//! The command line: `serve`, `migrate`, `admin …` and `config`. Startup and CLI code may use
//! `anyhow`; everything it calls returns typed errors.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use cortex_core::audit::Actor;
use cortex_core::store::Page;

use crate::app::{AppState, open_store};
use crate::config::Settings;
use crate::tenancy::operators;

#[derive(Parser, Debug)]
#[command(
    name = "cortexlayer",
    version,
    about = "Self-hostable support agent platform"
)]
pub struct Cli {
    /// A TOML configuration file (default: ./cortexlayer.toml if present, or CORTEX_CONFIG).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (API, docs, workers) in one process.
    Serve {
        /// Listen address, e.g. 0.0.0.0:8080 (overrides CORTEX_BIND).
        #[arg(long)]
        bind: Option<SocketAddr>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Operator tasks.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Print the effective configuration, secrets redacted.
    Config,
    /// The job queue.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Add files to a tenant's knowledge base, as an upload through the API would.
    Ingest(IngestArgs),
    /// Ask a tenant's bot a question and print the answer with its sources.
    Ask(AskArgs),
    /// Measure search and ingestion speed on a scratch database (docs/benchmarks.md).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Retrieval quality on a BEIR-format dataset (corpus.jsonl, queries.jsonl, qrels.tsv),
    /// ingested into scratch tenants through the real pipeline: nDCG@10, Recall@10, MRR@10
    /// and latency for lexical, vector and hybrid search. With `--answers DIR` instead:
    /// answer quality on customers' questions over help centres (see `eval_answers`).
    Eval(EvalArgs),
}

#[derive(Args, Debug)]
pub struct AskArgs {
    /// The question, as a customer would write it.
    pub question: String,
    /// The tenant's id (`cortexlayer admin list-tenants` shows them).
    #[arg(long)]
    pub tenant: String,
    /// Continue this conversation.
    #[arg(long)]
    pub conversation: Option<String>,
    /// Print the whole answer as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The BEIR dataset folder.
    #[arg(long, required_unless_present = "answers", conflicts_with = "answers")]
    pub dataset: Option<PathBuf>,
    /// A folder of help centres (one subfolder each) and `questions.jsonl`: answer quality.
    #[arg(long)]
    pub answers: Option<PathBuf>,
    /// With `--answers`: print every question judged wrong and what the bot said.
    #[arg(long)]
    pub show_misses: bool,
    /// With `--answers`: ask every question at each abstention threshold from 0.10 to 0.80
    /// and print the share answered with the fact and abstained on; the threshold that
    /// serves both best on the `dev` split is the calibrated one.
    #[arg(long)]
    pub calibrate: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// An empty database to use instead of a scratch SQLite file (e.g. PostgreSQL).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Judge only the first N queries that have judgements.
    #[arg(long)]
    pub queries: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum JobsCommand {
    /// Enqueue the periodic jobs whose period ended, run every due job in this process until
    /// none is due, print what ran and exit (for deployments that run no workers, or to empty
    /// the queue by hand). Failed attempts are retried later, as the workers would.
    Run,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Vector, lexical and hybrid search latency over one tenant's chunks (without the model).
    Search {
        #[arg(long, default_value_t = 10_000)]
        chunks: usize,
        #[arg(long, default_value_t = 500)]
        queries: usize,
        #[arg(long, default_value_t = 10)]
        k: u32,
        /// An empty database to use instead of a scratch SQLite file (e.g. PostgreSQL).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// The answer engine end to end over FILES: latency percentiles and known answers right
    /// (QUESTIONS: JSON lines `{"question", "expect": substring or null for "must abstain"}`).
    Answer {
        #[arg(long)]
        questions: PathBuf,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Questions asked at once (each by its own customer).
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// The configured reranker's latency (RERANK_MODEL_DIR or RERANK_BASE_URL) on the hybrid
    /// candidates of each question of QUESTIONS over FILES.
    Rerank {
        #[arg(long)]
        questions: PathBuf,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Candidates a call (the search API passes max(2k, 24)).
        #[arg(long, default_value_t = 20)]
        top: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// The Meta webhook's acknowledgement latency at a steady rate of signed deliveries, over
    /// loopback HTTP through the real router.
    Webhook {
        /// Requests a second.
        #[arg(long, default_value_t = 500)]
        rate: u32,
        #[arg(long, default_value_t = 20)]
        seconds: u32,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Every dashboard page rendered for a tenant with DOCUMENTS documents and CONVERSATIONS
    /// conversations: latency percentiles over loopback HTTP and the JavaScript each loads.
    Dashboard {
        #[arg(long, default_value_t = 10_000)]
        documents: usize,
        #[arg(long, default_value_t = 100_000)]
        conversations: usize,
        #[arg(long, default_value_t = 200)]
        requests: usize,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// The real HTTP server under concurrent clients: a BEIR dataset uploaded through the API
    /// and timed until every vector is searchable, then search (each mode) and chat loads at
    /// CONCURRENCY with the question cache off, and hybrid search once more with it on.
    Load {
        /// A BEIR-layout folder (`corpus.jsonl` with optional `metadata.tenant`, `queries.jsonl`).
        #[arg(long)]
        dataset: PathBuf,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Seconds each load runs, after a warm-up.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Uploads at once while ingesting.
        #[arg(long, default_value_t = 8)]
        uploads: usize,
        /// Loads to run, comma-separated: lexical, vector, hybrid, chat.
        #[arg(
            long,
            default_value = "lexical,vector,hybrid,chat",
            value_delimiter = ','
        )]
        modes: Vec<String>,
        /// Measure another service instead with the same clients (the Python peer of
        /// ../shared/bench/peer: `POST /ingest`, `GET /query`), e.g. http://127.0.0.1:8765.
        #[arg(long)]
        peer: Option<String>,
        /// Stop after ingesting.
        #[arg(long)]
        ingest_only: bool,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Seconds per MB until files are lexically searchable and until fully embedded.
    Ingest {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Files (PDF, DOCX, TXT, Markdown, HTML); folders are read recursively.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The tenant's id (`cortexlayer admin list-tenants` shows them).
    #[arg(long)]
    pub tenant: String,
    /// Process the files here and wait until every one is ready or failed (otherwise a
    /// running server's workers process them).
    #[arg(long)]
    pub wait: bool,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create a platform admin account.
    Create(CreateAdmin),
    /// List tenants, newest first.
    ListTenants {
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Suspend a tenant: its members and API keys are refused until reactivated.
    Suspend { tenant_id: String },
    /// Lift a tenant's suspension.
    Reactivate { tenant_id: String },
    /// Re-seal every secret stored at rest under ENCRYPTION_KEY (the previous key must be in
    /// ENCRYPTION_OLD_KEYS until this has run).
    RotateKey,
}

#[derive(Args, Debug)]
pub struct CreateAdmin {
    #[arg(long)]
    pub email: String,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// The password (prefer --password-stdin; this shows in the process list).
    #[arg(long, env = "CORTEX_ADMIN_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = Settings::from_process_env(cli.config.as_deref())?;
    crate::telemetry::init(&settings);
    match cli.command {
        Command::Serve { bind } => {
            if let Some(bind) = bind {
                settings.bind = bind;
            }
            serve(settings).await
        }
        Command::Migrate => {
            settings.validate()?;
            let store = open_store(&settings, true).await?;
            println!("migrations applied ({})", store.backend());
            Ok(())
        }
        Command::Config => {
            print!("{}", settings.redacted_toml());
            Ok(())
        }
        Command::Admin(cmd) => admin(settings, cmd).await,
        Command::Jobs(JobsCommand::Run) => {
            let state = AppState::build(settings).await?;
            let drained = crate::jobs::run_pending(&state).await?;
            println!(
                "{} job(s) done, {} attempt(s) failed",
                drained.done,
                drained.failed.len()
            );
            for (kind, why) in &drained.failed {
                println!("  {kind}: {why}");
            }
            Ok(())
        }
        Command::Ingest(args) => ingest(settings, args).await,
        Command::Ask(args) => ask(settings, args).await,
        Command::Bench(BenchCommand::Search {
            chunks,
            queries,
            k,
            database_url,
        }) => crate::bench::search(settings, chunks, queries, k, database_url).await,
        Command::Bench(BenchCommand::Rerank {
            questions,
            files,
            top,
            rounds,
        }) => crate::bench::rerank(settings, &questions, &files, top, rounds).await,
        Command::Bench(BenchCommand::Webhook {
            rate,
            seconds,
            database_url,
        }) => crate::bench::webhook(settings, rate, seconds, database_url).await,
        Command::Bench(BenchCommand::Load {
            dataset,
            concurrency,
            seconds,
            uploads,
            modes,
            peer,
            ingest_only,
            database_url,
        }) => {
            let options = crate::bench_load::LoadOptions {
                dataset,
                concurrency,
                seconds,
                uploads,
                modes,
                peer,
                ingest_only,
            };
            crate::bench_load::load(settings, options, database_url).await
        }
        Command::Bench(BenchCommand::Ingest {
            files,
            database_url,
        }) => crate::bench::ingest(settings, &files, database_url).await,
        Command::Bench(BenchCommand::Dashboard {
            documents,
            conversations,
            requests,
            database_url,
        }) => {
            crate::bench::dashboard(settings, documents, conversations, requests, database_url)
                .await
        }
        Command::Bench(BenchCommand::Answer {
            questions,
            files,
            rounds,
            concurrency,
            database_url,
        }) => {
            crate::bench::answer(
                settings,
                &questions,
                &files,
                rounds,
                concurrency,
                database_url,
            )
            .await
        }
        Command::Eval(EvalArgs {
            answers: Some(dir),
            json,
            database_url,
            show_misses,
            calibrate,
            ..
        }) => {
            crate::eval_answers::run(
                settings,
                crate::eval_answers::AnswerEvalOptions {
                    dir,
                    json,
                    database_url,
                    show_misses,
                    calibrate,
                },
            )
            .await
        }
        Command::Eval(args) => {
            crate::eval::run(
                settings,
                crate::eval::EvalOptions {
                    dataset: args.dataset.context("--dataset or --answers")?,
                    json: args.json,
                    database_url: args.database_url,
                    limit_queries: args.queries,
                },
            )
            .await
        }
    }
}

/// Every file under `paths` (folders recursively, hidden entries skipped), sorted.
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    !p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            entries.sort();
            out.extend(collect_files(&entries)?);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// The app, and the tenant named on the command line acted on by the operator.
async fn as_operator(
    settings: Settings,
    tenant: &str,
) -> anyhow::Result<(
    AppState,
    cortex_core::ids::TenantId,
    crate::tenancy::TenantCtx,
)> {
    let state = AppState::build(settings).await?;
    let id = tenant
        .parse()
        .map_err(|_| anyhow::anyhow!("--tenant must be a tenant id (a UUID)"))?;
    let ctx = crate::tenancy::TenantCtx::for_operator(&state, id)
        .await
        .map_err(|e| anyhow::anyhow!("tenant {tenant}: {e}"))?;
    Ok((state, id, ctx))
}

async fn ask(settings: Settings, args: AskArgs) -> anyhow::Result<()> {
    use std::io::Write;

    let (state, _, ctx) = as_operator(settings, &args.tenant).await?;
    let conversation_id = match &args.conversation {
        Some(c) => Some(
            c.parse()
                .map_err(|_| anyhow::anyhow!("--conversation must be a conversation id"))?,
        ),
        None => None,
    };
    let question = crate::answer::Question {
        message: args.question,
        conversation_id,
        channel: cortex_core::conversations::Channel::Api,
        history: Vec::new(),
        customer: None,
    };
    let mut out = std::io::stdout();
    // The answer streams to the terminal as it is written (in JSON mode it comes at the end).
    let print = |text: &str| {
        let mut out = std::io::stdout();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    };
    let sink: Option<cortex_core::ports::DeltaSink<'_>> = (!args.json).then_some(&print as _);
    let a = crate::answer::ask(&state, &ctx, question, sink)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if args.json {
        let citations: Vec<serde_json::Value> = a
            .citations
            .iter()
            .map(|c| serde_json::to_value(c).unwrap_or_default())
            .collect();
        let v = serde_json::json!({
            "conversation_id": a.conversation_id,
            "kind": a.kind.as_str(),
            "answer": a.text,
            "citations": citations,
            "confidence": a.confidence,
            "abstained": a.abstained(),
            "handoff_requested": a.handoff_requested(),
            "model": a.model,
            "usage": a.usage,
            "latency_ms": a.latency_ms,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    writeln!(out)?;
    if !a.citations.is_empty() {
        writeln!(out, "\nSources:")?;
        for c in &a.citations {
            let mut line = format!("[{}] {}", c.index, c.title);
            if !c.heading_path.is_empty() {
                line.push_str(&format!(" — {}", c.heading_path.join(" > ")));
            }
            if let Some(p) = c.page {
                line.push_str(&format!(", page {p}"));
            }
            writeln!(out, "{line}\n    {}", c.snippet.replace('\n', " "))?;
        }
    }
    writeln!(
        out,
        "\nconfidence {:.2} · model {} · {} ms · conversation {}{}",
        a.confidence,
        a.model,
        a.latency_ms,
        a.conversation_id,
        if a.handoff_requested() {
            " · handed to the inbox"
        } else {
            ""
        }
    )?;
    Ok(())
}

async fn ingest(settings: Settings, args: IngestArgs) -> anyhow::Result<()> {
    use crate::knowledge::{self, IncomingFile};
    use cortex_core::knowledge::DocumentStatus;

    let (state, tenant, ctx) = as_operator(settings, &args.tenant).await?;
    let files = collect_files(&args.paths)?;
    let mut incoming = Vec::with_capacity(files.len());
    for f in &files {
        incoming.push(IncomingFile {
            filename: f.file_name().map(|n| n.to_string_lossy().into_owned()),
            bytes: std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
        });
    }
    let docs = knowledge::add_files(&state, &ctx, incoming)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = std::io::stderr();
    use std::io::Write;
    for d in &docs {
        let _ = writeln!(
            out,
            "added {} {} ({}, {} bytes)",
            d.id, d.title, d.kind, d.size_bytes
        );
    }
    if !args.wait {
        let _ = writeln!(
            out,
            "queued; a running `cortexlayer serve` processes them (or pass --wait)"
        );
        return Ok(());
    }
    state
        .embedder
        .warm_up()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let workers = crate::jobs::Workers::start(&state);
    let started = std::time::Instant::now();
    let mut failed = 0;
    loop {
        let mut current = Vec::with_capacity(docs.len());
        for d in &docs {
            current.push(state.store.get_document(tenant, d.id).await?);
        }
        let done = current
            .iter()
            .filter(|d| matches!(d.status, DocumentStatus::Ready | DocumentStatus::Failed))
            .count();
        let progress: u32 = current.iter().map(|d| u32::from(d.progress)).sum::<u32>()
            / current.len().max(1) as u32;
        let filled = (progress / 5) as usize;
        let _ = write!(
            out,
            "\r[{}{}] {progress:>3}%  {done}/{} documents  {:.0}s ",
            "#".repeat(filled),
            "-".repeat(20 - filled.min(20)),
            current.len(),
            started.elapsed().as_secs_f64()
        );
        let _ = out.flush();
        if done == current.len() {
            let _ = writeln!(out);
            for d in &current {
                match (&d.status, &d.error_message) {
                    (DocumentStatus::Failed, msg) => {
                        failed += 1;
                        let _ = writeln!(
                            out,
                            "failed {} {}: {}",
                            d.id,
                            d.title,
                            msg.as_deref().unwrap_or("unknown error")
                        );
                    }
                    _ => {
                        let _ = writeln!(
                            out,
                            "ready  {} {} ({} chunks)",
                            d.id, d.title, d.chunk_count
                        );
                    }
                }
            }
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    workers.shutdown(std::time::Duration::from_secs(5)).await;
    if failed > 0 {
        anyhow::bail!("{failed} of {} documents failed", docs.len());
    }
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let bind = settings.bind;
    let state = AppState::build(settings).await?;
    state
        .embedder
        .warm_up()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding {bind}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        http.addr = %addr,
        database = state.store.backend(),
        env = ?state.settings.env,
        "CortexLayer is listening"
    );
    // A closed stdout (a supervisor that stopped reading) must not take the server down, so
    // these lines ignore write errors instead of panicking like println! would.
    // The address to open: a wildcard bind is reached on this machine through loopback.
    let open = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let mut banner = format!(
        "CortexLayer is running. Open the dashboard: http://{open}/\n  API docs: http://{open}/docs  (OpenAPI: http://{open}/openapi.json; the API is under /api/v1)\n  Database: {}\n  Embeddings: {} ({} workers)\n",
        state.store.backend(),
        state.embedder.model(),
        state.settings.knowledge.workers
    );
    if state.settings.env == crate::config::Environment::Development
        && state.mailer.kept().is_some()
    {
        banner.push_str(&format!(
            "  No SMTP_URL: mails (sign-up codes, invitations) are kept at http://{open}/dev/mail\n"
        ));
    }
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }
    let workers = crate::jobs::Workers::start(&state);
    let app = crate::http::router(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    workers.shutdown(std::time::Duration::from_secs(20)).await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

async fn admin(settings: Settings, cmd: AdminCommand) -> anyhow::Result<()> {
    let state = AppState::build(settings).await?;
    match cmd {
        AdminCommand::Create(args) => {
            let password = if args.password_stdin {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                line.trim_end_matches(['\r', '\n']).to_owned()
            } else {
                args.password
                    .context("give the password with --password-stdin or CORTEX_ADMIN_PASSWORD")?
            };
            let admin = operators::create_admin(&state, &args.email, password)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("platform admin created: {}", admin.id);
        }
        AdminCommand::RotateKey => {
            let r = crate::channels::rotate_key(&state).await?;
            println!(
                "re-sealed {} secret(s) under key {}; {} already under it; {} changed meanwhile",
                r.resealed,
                state.secrets.current_key_id(),
                r.current,
                r.raced
            );
        }
        AdminCommand::ListTenants { limit } => {
            for t in state.store.list_tenants(Page::first(limit)).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.status.as_str(),
                    t.plan,
                    t.created_at.format("%Y-%m-%d"),
                    t.name
                );
            }
        }
        AdminCommand::Suspend { tenant_id } => {
            let id = tenant_id.parse().context("not a tenant id")?;
            let t = operators::set_suspended(&state, Actor::System, id, true)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{} is now {}", t.id, t.status.as_str());
        }
        AdminCommand::Reactivate { tenant_id } => {
            let id = tenant_id.parse().context("not a tenant id")?;
            let t = operators::set_suspended(&state, Actor::System, id, false)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{} is now {}", t.id, t.status.as_str());
        }
    }
    Ok(())
}
