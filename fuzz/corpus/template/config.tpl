server={{host}}
port=1883
{{#empty}}never{{/empty}}
{{nested}}
