"""What a person reads: the plots every run and study logs (`plots`), the thesis's tables rebuilt from
tracked runs (`tables`) with each cell's seed ensemble (`ensembles`) and results per group of recordings
(`groups`), the like-for-like comparison (`comparison`), the HTML and Markdown page (`page`) with its figures
(`figures`), and the terminal summaries of one run (`summary`)."""
