from stressor.cli import main

# Guarded: a worker process (the dashboard draws in one) loads the parent's __main__ under another name.
if __name__ == "__main__":
    main()
