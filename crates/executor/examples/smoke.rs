use egcfg_executor::*;
fn main() {
    let ex = Executor::start(ExecutorConfig::default()).unwrap();
    println!("{}", ex.caps());
    let r = ex.trace(&[TraceRequest {
        program: "def add_one(x):\n    y = x + 1\n    return y".into(),
        setup: None,
        invocation: Invocation::Call {
            expr: "add_one(3)".into(),
        },
    }]);
    println!("{}", serde_json::to_string_pretty(&r[0]).unwrap());
    println!(
        "{:?}",
        ex.prepare(&[
            "def f(x):\n    for i in x:".into(),
            "def f(x):\n    \"\"\"doc\"\"\"\n    # c\n    y = x+1  # c\n    return y".into()
        ])
    );
    println!(
        "{:?}",
        ex.call_expression("assert remove_Occ(\"hello\",\"l\") == \"heo\"")
    );
}
