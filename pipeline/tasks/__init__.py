"""Task types, one package per `task.type`: its recipe section (`section`), its prediction record and the scores a
comparison tests (`records`), its adapter (`adapter`: tokenizing, the head, evaluation) and, where it has one, its
classical baseline; registered in `tasks.registry`. Importing this package imports no torch."""
