ÐContent-Type: application/json
Connection: keep-alive

{"id":"d4d372dd-c994-4b84-88a0-a883b44ada10","body":{"occurred":1646914071461,"userId":1,"details":{"doorId":1,"doorName":"Door Name","personId":1},"event":"door.input.virtualread","result":null},"metadata":{"occurred":1646914071739},"panelId":"1070000","topic":"notification.client.command"}