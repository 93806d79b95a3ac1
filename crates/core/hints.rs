//! The command-line flags that do what a library error asks for.
//!
//! Libraries describe the setting to change ("a context of 1024 tokens or
//! more"); only this binary knows which flag sets it, so the flag is named
//! here, next to the library's message.

use egcfg_bench::{DatasetError, StoreError};
use egcfg_engine::EngineError;
use egcfg_method::MethodError;

/// `error`'s message (with its causes), followed by the flag that fixes it
/// when one does.
pub fn describe(error: &anyhow::Error) -> String {
    let hint = error.chain().find_map(flag_hint);
    match hint {
        Some(hint) => format!("{error:#}; {hint}"),
        None => format!("{error:#}"),
    }
}

/// [`MethodError`]'s message, followed by the flag that fixes it when one
/// does.
pub fn describe_method_error(error: &MethodError) -> String {
    match flag_hint(error) {
        Some(hint) => format!("{error}; {hint}"),
        None => error.to_string(),
    }
}

/// The flag that does what `error` asks for, if it asks for a setting.
fn flag_hint(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let context_full = || "raise --ctx".to_string();
    if let Some(error) = error.downcast_ref::<MethodError>() {
        return match error {
            MethodError::PromptTooLong { suggested_ctx, .. } => {
                Some(format!("use --ctx {suggested_ctx} or more"))
            }
            MethodError::Engine(EngineError::ContextFull { .. }) => Some(context_full()),
            _ => None,
        };
    }
    if let Some(EngineError::ContextFull { .. }) = error.downcast_ref::<EngineError>() {
        return Some(context_full());
    }
    if let Some(error) = error.downcast_ref::<StoreError>() {
        return match error {
            StoreError::Missing { path } => {
                Some(format!("create one with `egcfg bench --db {path}`"))
            }
            StoreError::Schema { .. } | StoreError::DatasetChanged { .. } => {
                Some("give --db a new file".to_string())
            }
            _ => None,
        };
    }
    if let Some(DatasetError::Unknown { .. }) = error.downcast_ref::<DatasetError>() {
        return Some("`egcfg bench --list-datasets` lists them".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_too_small_context_names_the_flag_and_its_value() {
        let error = MethodError::PromptTooLong {
            needed: 900,
            answer: 100,
            n_ctx: 512,
            suggested_ctx: 1024,
        };
        let text = describe_method_error(&error);
        assert!(text.starts_with(&error.to_string()), "{text}");
        assert!(text.ends_with("; use --ctx 1024 or more"), "{text}");
        let wrapped = anyhow::Error::new(error).context("solving task t1");
        assert!(describe(&wrapped).ends_with("use --ctx 1024 or more"));
    }

    #[test]
    fn errors_without_a_setting_are_left_as_they_are() {
        let error = anyhow::anyhow!("the model file is damaged");
        assert_eq!(describe(&error), "the model file is damaged");
    }
}
