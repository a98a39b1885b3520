from mmif_operator.console.server import main

main()
