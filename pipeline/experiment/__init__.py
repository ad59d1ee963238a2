"""The experiment layer, between the libraries (families, data, tasks, surgery, evaluation) and the applications
(train, eval, inspect, diagnose, sweep): it loads and checks a recipe (`recipes`) and builds what a run needs from it
(`build`: tokenizer, model with its layer surgery and policies, encoded data, metrics, the process group)."""
