from stressor.cli import main

main()
