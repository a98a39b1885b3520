"""Reading a run's outputs on its volume: summaries of MMIF files (`summary`), the files of one
run folder (`reader`), and `mmif-runner show` (`show`), which prints them as JSON for the
`kubectl mmif` plugin's reader pod. Pure functions over paths and MMIF text: the web console can
reuse them."""
