//! The `Tool` trait that each of the 18 tools implements, and its type-erased form the registry holds.
//!
//! A tool declares its metadata, typed input and output, and the context it runs with. The context
//! type fixes the layer: a tool that takes a `ReadCtx` is a domain tool and can only read. Input types
//! must reject unknown fields (`#[serde(deny_unknown_fields)]`); the registry test checks the schemas.

use std::{any::Any, future::Future};

use lynx_model::{Layer, Refusal, Risk, draft::DraftType};
use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::context::{Cleared, LayerContext};

/// A tool's identity and classification, published in `tools/list` and `/api/tools`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolSpec {
    /// `domain.layer.object.verb`, for example `tenant.domain.profile.read`.
    pub id: &'static str,
    /// A human title.
    pub title: &'static str,
    pub risk: Risk,
    /// Cluster: the type of draft it creates. Cell: the type of approved draft it executes; `None` for
    /// the cell tool that acts on a draft of any type in status `DRAFT` (submit for approval).
    pub draft_type: Option<DraftType>,
    /// The Kernel role-gate permission a caller's role must hold (cluster tools: `payment_create`, …).
    pub role_gate: Option<&'static str>,
    /// The one exception to "no Kernel, no call": a diagnostic read of Lynx's own health, which must
    /// be able to report a Kernel outage. During an outage (only then) a caller authenticated by key
    /// may call it without a role; it reads no Kernel data.
    pub serves_during_kernel_outage: bool,
    pub description: &'static str,
}

impl ToolSpec {
    /// The business domain: the id's first segment (`vpm`, `docs`, …), which is also the module flag.
    pub fn domain(&self) -> &'static str {
        self.id.split('.').next().unwrap_or(self.id)
    }
}

pub trait Tool: Send + Sync + 'static {
    type Input: DeserializeOwned + JsonSchema + Send + 'static;
    type Output: Serialize + JsonSchema + Send;
    /// The per-layer context; its `LAYER` is this tool's layer.
    type Context: LayerContext;
    const SPEC: ToolSpec;

    fn run(&self, ctx: &Self::Context, input: Self::Input) -> impl Future<Output = Result<Self::Output, Refusal>> + Send;
}

/// Input that passed validation, ready for the tool that decoded it.
pub struct Validated(pub(crate) Box<dyn Any + Send>);

/// A tool with its types erased, as the registry and the pipeline hold it.
#[async_trait::async_trait]
pub trait ErasedTool: Send + Sync {
    fn spec(&self) -> &'static ToolSpec;
    fn layer(&self) -> Layer;
    fn input_schema(&self) -> serde_json::Map<String, Value>;
    fn output_schema(&self) -> serde_json::Map<String, Value>;
    fn decode(&self, args: &Value) -> Result<Validated, Refusal>;
    async fn execute(&self, cleared: Cleared, input: Validated) -> Result<Value, Refusal>;
}

pub(crate) struct Erased<T>(pub T);

#[async_trait::async_trait]
impl<T: Tool> ErasedTool for Erased<T> {
    fn spec(&self) -> &'static ToolSpec {
        &T::SPEC
    }
    fn layer(&self) -> Layer {
        T::Context::LAYER
    }
    fn input_schema(&self) -> serde_json::Map<String, Value> {
        crate::schema::input::<T::Input>()
    }
    fn output_schema(&self) -> serde_json::Map<String, Value> {
        crate::schema::output::<T::Output>()
    }
    fn decode(&self, args: &Value) -> Result<Validated, Refusal> {
        let input: T::Input = crate::validation::decode(args)?;
        Ok(Validated(Box::new(input)))
    }
    async fn execute(&self, cleared: Cleared, input: Validated) -> Result<Value, Refusal> {
        let input = *input.0.downcast::<T::Input>().map_err(|_| Refusal::internal("decoding the validated input"))?;
        let ctx = T::Context::build(cleared);
        let output = self.0.run(&ctx, input).await?;
        let output = serde_json::to_value(output).map_err(|_| Refusal::internal("encoding the tool's output"))?;
        // The layer decides what becomes of the answer: a read returns it; a draft is saved with it;
        // an execution claims, applies its effect and commits with it.
        ctx.finish(output).await
    }
}
