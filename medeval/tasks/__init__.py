"""What is asked: task specs and their registry (spec), the datasets behind them (data, item_files),
prompt rendering (prompts), the answer types (answer_types/) and the rules that read an answer out
of a model's text (extract, extract_statements, extract_choice)."""
