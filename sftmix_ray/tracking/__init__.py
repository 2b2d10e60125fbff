"""MLflow, in one room: the store and its queries (`store`), a sweep's parent run (`sweep`), a
child run per trial (`trials`), the answer and its tags (`front`), runs read back (`runs`), and
`sftmix eval` runs (`evals`). Nothing else in the package talks to MLflow."""
